"""Move the rows of accounts whose retention period changed to their new class, as the
hourly beat task does; prints each account with the rows moved."""

from django.core.management.base import BaseCommand, CommandError

from console.models import Account
from logs.retention.moves import move_retention_classes


class Command(BaseCommand):
    help = "Move rows stored under an account's earlier retention period to its current class."

    def add_arguments(self, parser):
        parser.add_argument("--account", metavar="SLUG", help="Only this account.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per batch (default: the purge's).")

    def handle(self, *args, account, batch_size, **options):
        if account is not None and not Account.objects.filter(slug=account).exists():
            raise CommandError(f"no account with slug {account!r}")
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        results = move_retention_classes(slug=account, batch_rows=batch_size)
        if not results:
            self.stdout.write("Nothing to move: every account's rows are in its period's class.")
        for r in results:
            classes = ", ".join(f"{days} days" for days in r.from_days)
            state = "" if r.finished else " (stopped early: the next run continues)"
            self.stdout.write(
                f"  {r.account.slug}: {r.moved} rows moved from {classes} to {r.to_days} days "
                f"in {r.batches} batches{state}"
            )
