"""Sending mail, for the features that need it (alerts, reports): one helper over Django's mail.

The backend, server and sender come from settings (console/email_url.py reads them from the
environment). Errors are not swallowed: a caller that must not fail catches them itself.
"""

from collections.abc import Iterable, Sequence
from email import encoders
from email.mime.base import MIMEBase

from django.conf import settings
from django.core.mail import EmailMultiAlternatives


def send_mail_message(
    *,
    to: str | Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Iterable[tuple[str, bytes, str]] = (),
) -> int:
    """Send one message (text, optionally an HTML alternative, attachments as (filename, bytes,
    mimetype)) from DEFAULT_FROM_EMAIL; the number of messages sent (1, or 0 if the backend dropped it)."""
    recipients = [to] if isinstance(to, str) else list(to)
    message = EmailMultiAlternatives(subject=subject, body=text, to=recipients)
    if html is not None:
        message.attach_alternative(html, "text/html")
    for filename, content, mimetype in attachments:
        message.attach(_attachment(filename, content, mimetype))
    return message.send()


def _attachment(filename: str, content: bytes, mimetype: str) -> MIMEBase:
    # Always base64: Django would send a text/* attachment as text, and text travels with
    # CRLF line ends, so a CSV would not arrive byte for byte as the file it was made from.
    maintype, _, subtype = mimetype.partition("/")
    part = MIMEBase(maintype, subtype) if subtype else MIMEBase("application", "octet-stream")
    part.set_payload(content)
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def delivery_description() -> str:
    """Where mail goes with the current settings, for operators; never the password."""
    backend = settings.EMAIL_BACKEND
    if backend.endswith("smtp.EmailBackend"):
        tls = "implicit TLS" if settings.EMAIL_USE_SSL else "STARTTLS" if settings.EMAIL_USE_TLS else "no TLS"
        login = f"login as {settings.EMAIL_HOST_USER!r}" if settings.EMAIL_HOST_USER else "no login"
        server = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        return f"SMTP server {server} ({tls}, {login}, timeout {settings.EMAIL_TIMEOUT} s)"
    if backend.endswith("filebased.EmailBackend"):
        return f"files in {settings.EMAIL_FILE_PATH} (no SMTP server configured; {backend})"
    return backend
