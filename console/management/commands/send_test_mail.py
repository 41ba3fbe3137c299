"""manage.py send_test_mail --to EMAIL

Sends one short mail through the configured backend and says where it went (backend, server,
TLS mode; never the password). A refused or unreachable server ends it with exit status 1 and
one line saying why, within EMAIL_TIMEOUT.
"""

import smtplib
import ssl

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from console.mail import delivery_description, send_mail_message


def failure_reason(exc: Exception) -> str:
    """One line for an operator: what the SMTP server (or the network) said."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
        return f"the server refused the recipient ({refused})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"the server refused the login ({exc.smtp_code} {_text(exc.smtp_error)}); check the user and password"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"the server refused the sender {exc.sender!r} ({exc.smtp_code} {_text(exc.smtp_error)})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the server answered {exc.smtp_code} {_text(exc.smtp_error)}"
    # smtplib turns a timeout while waiting for a reply into SMTPServerDisconnected.
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return f"no answer within EMAIL_TIMEOUT ({settings.EMAIL_TIMEOUT} s)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that host and port)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc}); check EMAIL_USE_TLS / EMAIL_USE_SSL against the port"
    return str(exc) or type(exc).__name__


def _text(message) -> str:
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


class Command(BaseCommand):
    help = "Send one test mail with the configured mail settings and say where it went."

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, help="recipient address")

    def handle(self, *args, **options):
        to = options["to"].strip()
        try:
            validate_email(to)
        except ValidationError as exc:
            raise CommandError(f"--to: {to!r} is not an email address.") from exc
        where = delivery_description()
        self.stdout.write(f"Sending a test mail to {to} from {settings.DEFAULT_FROM_EMAIL} via {where}")
        try:
            sent = send_mail_message(
                to=to,
                subject="Meterlog test mail",
                text="This is a test mail from Meterlog (manage.py send_test_mail). Mail works.\n",
            )
        except (smtplib.SMTPException, OSError) as exc:
            raise CommandError(f"Could not send the test mail via {where}: {failure_reason(exc)}") from exc
        if sent != 1:
            raise CommandError(f"The mail backend accepted nothing ({where}).")
        self.stdout.write(self.style.SUCCESS(f"Sent: the test mail to {to} was accepted."))
