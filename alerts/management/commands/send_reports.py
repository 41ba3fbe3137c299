"""Send the report mails that are due, as the beat task does every 15 minutes.

    manage.py send_reports [--account SLUG] [--period daily|weekly|monthly] [--now]
    manage.py send_reports --now --to EMAIL --account SLUG [--period monthly]

Without --to: every active subscription (of the account / frequency given) whose period is
due gets it, once (a period sent already is skipped); --now does not wait for the
subscription's hour. With --now and --to: one report of the account's last full period
(weekly by default), to that address at once, to try the mail settings; it is kept on the
reports page like any other and does not count as a subscription's send.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.utils import timezone

from alerts.reports import sending
from console.mail import delivery_description
from console.models import Account


class Command(BaseCommand):
    help = "Send the report mails that are due (or, with --now --to, one report at once)."

    def add_arguments(self, parser):
        parser.add_argument("--account", metavar="SLUG", help="Only this account's subscriptions.")
        parser.add_argument("--period", choices=sending.FREQUENCIES, help="Only subscriptions of this frequency.")
        parser.add_argument("--to", metavar="EMAIL", help="With --now: send one report to this address.")
        parser.add_argument("--now", action="store_true", help="Do not wait for each subscription's hour.")

    def handle(self, *args, account, period, to, now, **options):
        found = None
        if account is not None:
            found = Account.objects.filter(slug=account).first()
            if found is None:
                raise CommandError(f"--account: no account with slug {account!r}")
        moment = timezone.now()
        if to is not None:
            if not now:
                raise CommandError("--to sends one report at once: give --now too")
            if found is None:
                raise CommandError("--to needs --account SLUG (whose report to send)")
            try:
                validate_email(to)
            except ValidationError as exc:
                raise CommandError(f"--to: {to!r} is not an email address") from exc
            sent, ok = sending.send_report_now(account=found, frequency=period or "weekly", to=to, now=moment)
            sent.refresh_from_db()
            if not ok:
                raise CommandError(f"Could not send via {delivery_description()}: {sent.last_error}")
            self.stdout.write(f"Sent: {sent.subject} to {to} ({delivery_description()}).")
            return
        summary = sending.send_due_reports(now=moment, account=found, frequency=period, ignore_hour=now)
        for line in summary.sent:
            self.stdout.write(f"sent: {line}")
        for line in summary.skipped:
            self.stdout.write(f"skipped: {line}")
        for line in summary.failed:
            self.stderr.write(f"FAILED: {line} (kept; the next run tries again)")
        self.stdout.write(f"{len(summary.sent)} sent, {len(summary.failed)} failed, {len(summary.skipped)} skipped.")
        if summary.failed:
            raise CommandError(f"{len(summary.failed)} report mail(s) could not be sent")
