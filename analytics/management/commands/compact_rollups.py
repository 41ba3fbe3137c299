"""Rewrite finished months of the slices and daily rows in value order (PostgreSQL).

The beat task `compact-rollups` does last month on the 3rd; run this once after upgrading,
or after loading months that ingest wrote (a rebuild writes its windows in order already).
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics.rollups import analyze, compact_month
from analytics.timekeys import previous_month
from console.models import Account


class Command(BaseCommand):
    help = "Rewrite the last finished months of UsageSlice / UsageDay rows in value order (PostgreSQL only)."

    def add_arguments(self, parser):
        parser.add_argument("--account", action="append", help="Account slug; repeat for several (default: all).")
        parser.add_argument("--months", type=int, default=13, help="Finished months back from today (default 13).")

    def handle(self, *args, account, months, **options):
        if months < 1:
            raise CommandError("--months must be at least 1")
        accounts = Account.objects.order_by("pk")
        if account:
            accounts = accounts.filter(slug__in=account)
            missing = set(account) - set(accounts.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"no such account: {', '.join(sorted(missing))}")
        total = 0
        for item in accounts:
            first = timezone.now().astimezone(item.zone).date().replace(day=1)
            moved = 0
            for _ in range(months):
                first = previous_month(first)
                moved += compact_month(item, first)
            total += moved
            self.stdout.write(f"{item.slug}: {moved:,} rows rewritten in value order")
        analyze()
        self.stdout.write(f"{total:,} rows in all")
