"""Small secrets the console must read back (an alert webhook's signing secret), encrypted at rest.

Fernet keys are derived from SECRET_KEY with HKDF (a purpose label of their own, so the
key is not the one Django signs cookies with); SECRET_KEY_FALLBACKS still unseal, so
rotating SECRET_KEY the Django way keeps old secrets readable. Log encryption has its own
keys (logs.encryption): this is for console settings only.
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"meterlog console.sealed v1"


class SealedError(ValueError):
    """A sealed value none of the keys opens (SECRET_KEY changed without a fallback)."""


def _derive(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


@lru_cache(maxsize=4)
def _fernet(secret_key: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_derive(secret_key), *(_derive(old) for old in fallbacks)])


def _current() -> MultiFernet:
    return _fernet(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ()))


def seal(value: str) -> str:
    return _current().encrypt(value.encode()).decode("ascii")


def unseal(sealed: str) -> str:
    try:
        return _current().decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise SealedError("the sealed value does not open with SECRET_KEY or SECRET_KEY_FALLBACKS") from exc
