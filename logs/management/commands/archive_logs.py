"""Archive one month of request logs per account to gzip NDJSON files with a checksum manifest.

The work is in logs/archive.py; this command parses options, shows progress on stderr and
prints the summary on stdout. Layout and restore steps: README "Backups (archive_logs)".
"""

from django.core.management.base import BaseCommand, CommandError

from console.errors import EncryptionKeyError
from console.models import Account
from logs.archive import ArchiveError, archive_accounts, manifest_path, month_bounds


class Command(BaseCommand):
    help = "Write DIR/<slug>/<slug>-<YYYY-MM>.ndjson.gz per account and DIR/manifest-<YYYY-MM>.json."

    def add_arguments(self, parser):
        parser.add_argument("--account", help="Account slug (default: every account with rows in the month).")
        parser.add_argument("--month", required=True, help="Calendar month in UTC, YYYY-MM.")
        parser.add_argument("--to", required=True, dest="to_dir", metavar="DIR", help="Archive directory.")

    def handle(self, *args, account, month, to_dir, **options):
        try:
            month_bounds(month)
        except ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        if account is not None:
            accounts = list(Account.objects.filter(slug=account))
            if not accounts:
                raise CommandError(f"no account with slug {account!r}")
        else:
            accounts = Account.objects.order_by("slug")

        def progress(item) -> None:
            detail = f"{item.rows:,} rows -> {item.file} ({item.bytes:,} bytes)" if item.file else "no rows, no file"
            self.stderr.write(f"{item.account}: {detail}")

        try:
            archived = archive_accounts(accounts=accounts, month=month, to_dir=to_dir, progress=progress)
        except (ArchiveError, EncryptionKeyError) as exc:
            raise CommandError(str(exc)) from exc
        written = [item for item in archived if item.file]
        self.stdout.write(f"month {month}: {len(written)} files, {sum(item.rows for item in archived):,} rows")
        for item in archived:
            self.stdout.write(f"  {item.account}: {item.rows:,} rows" + (f" ({item.file})" if item.file else ""))
        self.stdout.write(f"manifest: {manifest_path(to_dir, month)}")
