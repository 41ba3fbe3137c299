"""Re-encrypt stored log rows with the newest key of FIELD_ENCRYPTION_KEY (logs.rotation).

Put the new key first (FIELD_ENCRYPTION_KEY="new,old"), restart, run this; when it reports 0
rows left to re-encrypt and none unreadable, the old key can be removed. Safe to run again
and to stop: a second run re-encrypts 0 rows. `--generate` prints a new key and exits.
"""

from django.core.management.base import BaseCommand, CommandError

from console.models import Account
from logs import encryption
from logs.rotation import rotate_account


class Command(BaseCommand):
    help = "Re-encrypt encrypted log rows with the newest key in FIELD_ENCRYPTION_KEY, in batches."

    def add_arguments(self, parser):
        parser.add_argument("--account", metavar="SLUG", help="Only this account (default: every account).")
        parser.add_argument("--batch-rows", type=int, default=1000, help="Rows per batch and transaction (1000).")
        parser.add_argument("--dry-run", action="store_true", help="Count the rows to re-encrypt; write nothing.")
        parser.add_argument("--generate", action="store_true", help="Print a new Fernet key and exit.")

    def handle(self, *args, account, batch_rows, dry_run, generate, **options):
        if generate:
            self.stdout.write(encryption.generate_key())
            return
        if batch_rows < 1:
            raise CommandError("--batch-rows must be at least 1")
        problem = encryption.key_problem()
        if problem is not None:
            raise CommandError(problem)
        accounts = Account.objects.order_by("slug")
        if account is not None:
            accounts = accounts.filter(slug=account)
            if not accounts.exists():
                raise CommandError(f"no account with slug {account!r}")
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        total = unreadable = 0
        for item in accounts:

            def progress(rows, slug=item.slug):
                self.stderr.write(f"\r{slug}: {rows.scanned:,} encrypted rows read, {rows.rotated:,} {verb}", ending="")

            result = rotate_account(item, batch_rows=batch_rows, dry_run=dry_run, progress=progress)
            if result.scanned:
                self.stderr.write("")
            line = f"{item.slug}: {result.scanned:,} encrypted rows, {verb} {result.rotated:,}"
            if result.unreadable:
                line += f", {result.unreadable:,} unreadable with every configured key"
            self.stdout.write(line)
            total += result.rotated
            unreadable += result.unreadable
        self.stdout.write(f"{'Dry run: ' if dry_run else ''}{verb} {total:,} rows in all.")
        if unreadable:
            raise CommandError(f"{unreadable:,} rows were encrypted with a key that is not in FIELD_ENCRYPTION_KEY")
