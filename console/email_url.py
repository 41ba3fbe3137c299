"""Mail settings: EMAIL_URL -> Django's EMAIL_* settings (a pure function), and the whole set from the environment.

    smtp://user:pass@host:port       plain SMTP, no TLS (port 25)
    smtp+tls://user:pass@host:port   STARTTLS, EMAIL_USE_TLS (port 587)
    smtps://… or smtp+ssl://…        implicit TLS, EMAIL_USE_SSL (port 465)
    console:// or locmem://          Django's console / in-memory backends, for development

User and password are percent-decoded, so `p%40ss` is the password `p@ss`. An error message
never repeats the URL: it may hold a password.
"""

from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from console.env import env_bool, env_int, env_str

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"

# scheme -> (default port, EMAIL_USE_TLS, EMAIL_USE_SSL)
_SMTP_SCHEMES = {
    "smtp": (25, False, False),
    "smtp+tls": (587, True, False),
    "smtps": (465, False, True),
    "smtp+ssl": (465, False, True),
}
_OTHER_SCHEMES = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
}
_ENCODE_HINT = "percent-encode any of @ : / ? # in the user name and password"


def _invalid(problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"EMAIL_URL is invalid: {problem}")


def parse_email_url(url: str) -> dict:
    """The EMAIL_* settings that `url` stands for; ImproperlyConfigured naming EMAIL_URL if it is wrong."""
    url = url.strip()
    if "://" not in url:
        raise _bad_scheme("")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced [ in the host
        raise _invalid(f"cannot be parsed ({_ENCODE_HINT})") from exc
    scheme = parts.scheme.lower()
    if scheme in _OTHER_SCHEMES:
        return {"EMAIL_BACKEND": _OTHER_SCHEMES[scheme]}
    if scheme not in _SMTP_SCHEMES:
        raise _bad_scheme(scheme)
    default_port, use_tls, use_ssl = _SMTP_SCHEMES[scheme]
    if parts.query or parts.fragment:
        hint = f"STARTTLS: smtp+tls://, implicit TLS: smtps://; {_ENCODE_HINT}"
        raise _invalid(f"query options are not supported ({hint})")
    if parts.path not in ("", "/"):
        raise _invalid(f"no path is expected after host:port ({_ENCODE_HINT})")
    if not parts.hostname:
        raise _invalid(f"no host name ({scheme}://user:password@host:port)")
    try:
        port = parts.port
    except ValueError as exc:
        raise _invalid(f"the port must be a number from 1 to 65535 ({_ENCODE_HINT})") from exc
    if port == 0:
        raise _invalid("the port must be a number from 1 to 65535")
    return {
        "EMAIL_BACKEND": SMTP_BACKEND,
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port or default_port,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
    }


def _bad_scheme(scheme: str) -> ImproperlyConfigured:
    known = ", ".join(f"{name}://" for name in [*_SMTP_SCHEMES, *_OTHER_SCHEMES])
    shown = f"{scheme!r}" if scheme.replace("+", "").isalnum() else "missing"  # never echo a secret
    return _invalid(f"scheme {shown}; use one of {known}")


def email_settings_from_env(*, debug: bool, var_dir: Path) -> dict:
    """Every EMAIL_* setting from the environment: EMAIL_URL, else EMAIL_HOST and friends, else a default.

    The default: with DEBUG on, each mail is written as a file under var_dir/mail (the demo's
    mails can be read there); with DEBUG off, Django's own default, SMTP to localhost:25.
    """
    url = env_str("EMAIL_URL").strip()
    if url:
        found = parse_email_url(url)
    elif env_str("EMAIL_HOST").strip():
        use_tls, use_ssl = env_bool("EMAIL_USE_TLS", False), env_bool("EMAIL_USE_SSL", False)
        found = {
            "EMAIL_BACKEND": SMTP_BACKEND,
            "EMAIL_HOST": env_str("EMAIL_HOST").strip(),
            "EMAIL_PORT": env_int("EMAIL_PORT", 465 if use_ssl else 587 if use_tls else 25),
            "EMAIL_HOST_USER": env_str("EMAIL_HOST_USER"),
            "EMAIL_HOST_PASSWORD": env_str("EMAIL_HOST_PASSWORD"),
            "EMAIL_USE_TLS": use_tls,
            "EMAIL_USE_SSL": use_ssl,
        }
        if use_tls and use_ssl:
            raise ImproperlyConfigured("EMAIL_USE_TLS (STARTTLS) and EMAIL_USE_SSL (implicit TLS): set one, not both")
        if not 1 <= found["EMAIL_PORT"] <= 65535:
            raise ImproperlyConfigured(f"EMAIL_PORT must be from 1 to 65535, got {found['EMAIL_PORT']}")
    elif debug:
        found = {"EMAIL_BACKEND": FILE_BACKEND, "EMAIL_FILE_PATH": str(var_dir / "mail")}
    else:
        found = {"EMAIL_BACKEND": SMTP_BACKEND}
    # A dead SMTP server must not hold a web or Celery worker for minutes.
    found["EMAIL_TIMEOUT"] = env_int("EMAIL_TIMEOUT", 10)
    if found["EMAIL_TIMEOUT"] < 1:
        raise ImproperlyConfigured(f"EMAIL_TIMEOUT must be at least 1 (seconds), got {found['EMAIL_TIMEOUT']}")
    found["DEFAULT_FROM_EMAIL"] = env_str("DEFAULT_FROM_EMAIL", "Meterlog <meterlog@localhost>")
    found["SERVER_EMAIL"] = env_str("SERVER_EMAIL", found["DEFAULT_FROM_EMAIL"])
    return found
