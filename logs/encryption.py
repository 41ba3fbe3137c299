"""Log encryption (issue 15): the one module that knows Fernet.

An account with `encryption_enabled` has request_params, error_details and user_agent
stored encrypted (console.privacy.ENCRYPTED_FIELDS); ingest encrypts them after validation
and secret scrubbing, so the database never receives their plaintext. A row's `encrypted`
flag says how its three fields are stored (NULL: plain; a flag rather than a marker inside
the value, because error_details may be any JSON, a string too):

- user_agent: the Fernet token text ("" stays "": there is nothing to hide);
- request_params: a JSON string, the token of the compact JSON text ({} stays {});
- error_details: a JSON string, the token of its JSON text (NULL stays NULL).

Keys come from settings.FIELD_ENCRYPTION_KEY, comma-separated, newest first: new rows are
encrypted with the first, any of them decrypts (MultiFernet). A missing, malformed or
wrong key raises EncryptionKeyError with a message that says which and what to set; pages
and the API answer it with a 503 (console.middleware, console.api_errors).
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from console.errors import EncryptionKeyError
from console.privacy import ENCRYPTED_FIELDS

__all__ = ["ENCRYPTED_FIELDS", "EncryptionKeyError"]

HOW_TO_SET = (
    "set FIELD_ENCRYPTION_KEY to comma-separated Fernet keys, newest first "
    "(manage.py rotate_encryption_key --generate prints a new one)"
)
MISSING = f"Log encryption key missing: {HOW_TO_SET}."
WRONG = (
    "Log encryption key wrong: this row was encrypted with a key that is not in FIELD_ENCRYPTION_KEY "
    "(put the old key back after the newest one, then run `manage.py rotate_encryption_key`)."
)
CORRUPT = "A log row marked encrypted holds a value that is not an encryption token; it cannot be shown."


def _split(raw: str) -> list[str]:
    return [key.strip() for key in raw.split(",") if key.strip()]


def keys() -> list[str]:
    """The configured keys, newest first (not validated: see key_problem)."""
    return _split(settings.FIELD_ENCRYPTION_KEY)


@lru_cache(maxsize=4)
def _fernets(raw: str) -> tuple[MultiFernet, Fernet]:
    # Keyed by the setting's text, so a changed setting (tests, a reload) is read again.
    parts = _split(raw)
    if not parts:
        raise EncryptionKeyError(MISSING)
    fernets = []
    for position, key in enumerate(parts, 1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
            raise EncryptionKeyError(
                f"Log encryption key invalid: key {position} of FIELD_ENCRYPTION_KEY is not a Fernet key "
                f"(32 url-safe base64-encoded bytes); {HOW_TO_SET}."
            ) from exc
    return MultiFernet(fernets), fernets[0]


def _all() -> MultiFernet:
    return _fernets(settings.FIELD_ENCRYPTION_KEY)[0]


def _newest() -> Fernet:
    return _fernets(settings.FIELD_ENCRYPTION_KEY)[1]


def key_problem() -> str | None:
    """Why encryption cannot work with the configured keys, or None when they are usable."""
    try:
        _all()
    except EncryptionKeyError as exc:
        return str(exc)
    return None


def require_keys() -> None:
    """Raise EncryptionKeyError unless FIELD_ENCRYPTION_KEY holds usable keys."""
    _all()


def generate_key() -> str:
    return Fernet.generate_key().decode()


def encrypt_text(text: str) -> str:
    return _all().encrypt(text.encode()).decode()


def decrypt_text(token: str) -> str:
    if not isinstance(token, str):
        raise EncryptionKeyError(CORRUPT)
    fernet = _all()
    try:
        return fernet.decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise EncryptionKeyError(WRONG) from exc


# --- Ingest ------------------------------------------------------------------------------


def encrypt_clean(clean: dict) -> None:
    """Encrypt a validated record's three fields in place (logs.ingest.services), in both
    forms validation made: the value and the JSON text that COPY sends."""
    if clean["user_agent"]:
        clean["user_agent"] = encrypt_text(clean["user_agent"])
    for name in ("request_params", "error_details"):
        text = clean[f"{name}_json"]
        if text is None or text == "{}":
            continue
        token = encrypt_text(text)
        clean[name], clean[f"{name}_json"] = token, json.dumps(token)
    clean["encrypted"] = True


def encrypted_values(values: dict) -> dict:
    """{field: Python value} of the three fields -> the values to store for an encrypted row
    (a rewrite of stored rows: logs.scrub)."""
    stored = {}
    for name, value in values.items():
        if name == "user_agent":
            stored[name] = encrypt_text(value) if value else value
        elif value is None or value == {}:
            stored[name] = value
        else:
            stored[name] = encrypt_text(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return stored


# --- Reads -------------------------------------------------------------------------------


def decrypt_values(user_agent, request_params, error_details) -> tuple:
    """The plaintext of an encrypted row's three fields, from their Python values (a model
    instance's attributes, or values_list on SQLite): (user_agent, request_params, error_details)."""
    if user_agent:
        user_agent = decrypt_text(user_agent)
    if isinstance(request_params, str):
        request_params = json.loads(decrypt_text(request_params))
    if error_details is not None:
        error_details = json.loads(decrypt_text(error_details))
    return user_agent, request_params, error_details


def decrypt_json_texts(user_agent, request_params_text, error_details_text) -> tuple:
    """The same from the database's text of the JSON columns (the export's SQL path reads
    jsonb as text): the JSON texts come back as JSON text, ready for the encoders."""
    if user_agent:
        user_agent = decrypt_text(user_agent)
    if request_params_text is not None and request_params_text.startswith('"'):
        request_params_text = decrypt_text(json.loads(request_params_text))
    if error_details_text is not None:
        error_details_text = decrypt_text(json.loads(error_details_text))
    return user_agent, request_params_text, error_details_text


def plain_fields(row) -> tuple:
    """(user_agent, request_params, error_details) of a RequestLog as stored or decrypted."""
    if not row.encrypted or getattr(row, "_revealed", False):
        return row.user_agent, row.request_params, row.error_details
    return decrypt_values(row.user_agent, row.request_params, row.error_details)


def reveal(row):
    """Put the plaintext into a loaded RequestLog's three attributes, for display (the
    detail page, the admin). Log rows are never saved back, so the instance may hold them."""
    if row is not None and row.encrypted and not getattr(row, "_revealed", False):
        row.user_agent, row.request_params, row.error_details = plain_fields(row)
        row._revealed = True
    return row


# --- Rotation ----------------------------------------------------------------------------


def rotated_values(user_agent, request_params, error_details) -> dict | None:
    """For an encrypted row's stored values: {field: the token re-encrypted with the newest
    key} when any of them the newest key alone cannot read, else None. MultiFernet.rotate
    keeps each token's timestamp. EncryptionKeyError when no configured key reads one."""
    newest, every = _newest(), _all()
    changed = {}
    for name, token in (("user_agent", user_agent), ("request_params", request_params),
                        ("error_details", error_details)):  # fmt: skip
        if not isinstance(token, str) or not token:
            continue
        data = token.encode()
        try:
            newest.decrypt(data)
            continue
        except InvalidToken:
            pass
        try:
            changed[name] = every.rotate(data).decode()
        except InvalidToken as exc:
            raise EncryptionKeyError(WRONG) from exc
    return changed or None
