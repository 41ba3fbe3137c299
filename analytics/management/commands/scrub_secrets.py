"""Re-scrub stored rows with the current secret rules: for rows stored by an earlier release
(which masked fewer spellings) or before a rule was added (long hex keys). The work is in
analytics.scrub; this command picks the accounts, shows progress on stderr and prints the
summary on stdout. Safe to run again: a second run changes 0 rows.
"""

from django.core.management.base import BaseCommand, CommandError

from analytics.scrub import scrub_account_secrets
from console.models import Account


class Command(BaseCommand):
    help = (
        "Mask secret-looking API keys and scrub request_params, error_message, error_details and user_agent "
        "of stored log rows with the current rules; rewrite ApiKey rows, rollups and export filters to match."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", action="append", help="Account slug; repeat for several (default: all).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")
        parser.add_argument("--batch-size", type=int, default=1000, help="Log rows per batch (default 1000).")

    def handle(self, *args, account, dry_run, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        accounts = Account.objects.order_by("slug")
        if account:
            accounts = list(accounts.filter(slug__in=account))
            missing = set(account) - {a.slug for a in accounts}
            if missing:
                raise CommandError(f"no account with slug {', '.join(sorted(missing))}")
        verb = "would change" if dry_run else "changed"
        totals = [0, 0]
        accounts = list(accounts)
        for number, item in enumerate(accounts, 1):

            def progress(rows, slug=item.slug):
                self.stderr.write(f"\r{slug}: {rows.scanned:,} rows scanned, {rows.changed:,} {verb}", ending="")

            result = scrub_account_secrets(item, batch_size=batch_size, dry_run=dry_run, progress=progress)
            self.stderr.write("")
            self.stdout.write(
                f"[{number}/{len(accounts)}] {item.slug}: {result.scanned:,} rows scanned, {result.changed:,} rows "
                f"{verb}; {result.api_keys:,} API keys, {result.rollup_rows:,} rollup rows, "
                f"{result.exports:,} export records {verb}"
            )
            totals[0] += result.scanned
            totals[1] += result.total_changed
        self.stdout.write(
            f"{'Dry run: ' if dry_run else ''}{len(accounts)} accounts, {totals[0]:,} rows scanned, "
            f"{totals[1]:,} rows {verb} in all tables"
        )
