"""Recompute the analytics rollups from the raw request log.

Use it after changing an account's reporting time zone (days move to the new zone), after
loading rows behind ingest's back (bench/generate.py COPYs), or to check the rollups: a
rebuild of a range equals what ingest maintained. Days whose raw rows are past retention
are skipped: the rollups are then the only record of them.
"""

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics.rollups import analyze, rebuild
from console.models import Account
from logs.gate import request_logs


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = "Rebuild the analytics rollups (Usage* tables) from raw rows for a range of local days."

    def add_arguments(self, parser):
        parser.add_argument("--account", action="append", help="Account slug; repeat for several (default: all).")
        parser.add_argument("--start", help="First local day, YYYY-MM-DD (default: --days before today).")
        parser.add_argument("--end", help="Last local day, YYYY-MM-DD (default: today).")
        parser.add_argument("--days", type=int, help="With no --start: this many days back (default: retention).")
        parser.add_argument(
            "--past-retention",
            action="store_true",
            help="Also rebuild days older than the retention (only right if their raw rows were never purged); "
            "with no --start or --days, from the account's oldest stored row.",
        )

    def handle(self, *args, account, start, end, days, past_retention, **options):
        if account:
            accounts = list(Account.objects.filter(slug__in=account).order_by("slug"))
            missing = set(account) - {a.slug for a in accounts}
            if missing:
                raise CommandError(f"no account with slug {', '.join(sorted(missing))}")
        else:
            accounts = list(Account.objects.order_by("slug"))
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1")
        total = 0
        for number, item in enumerate(accounts, 1):
            today = timezone.now().astimezone(item.zone).date()
            last = _date(end) if end else today
            first = _date(start) if start else today - timedelta(days=(days or item.retention_days))
            if past_retention and not start and days is None:
                # Everything the log still holds: "retention days back from local today" misses
                # the oldest local day's late hours east of UTC once that day has rolled over.
                oldest = request_logs(account=item).order_by("timestamp").values_list("timestamp", flat=True).first()
                if oldest is not None:
                    first = min(first, oldest.astimezone(item.zone).date())
            if first > last:
                raise CommandError(f"--start {first} is after --end {last}")

            def progress(day, result, slug=item.slug, first=first, last=last):
                done = (day - first).days + 1
                span = (last - first).days + 1
                self.stderr.write(f"\r{slug}: {done}/{span} days, {result.rows:,} rows", ending="")

            result = rebuild(item, first, last, past_retention=past_retention, progress=progress)
            self.stderr.write("")
            note = ""
            if result.skipped_before:
                note = f" (kept days before {result.skipped_before}: raw rows past retention)"
            self.stdout.write(
                f"[{number}/{len(accounts)}] {item.slug}: {result.rows:,} rows -> {result.quarters:,} quarter rows, "
                f"{result.days:,} day rows, {first}..{last} in {item.timezone}{note}"
            )
            total += result.rows
        analyze()
        self.stdout.write(f"rebuilt from {total:,} rows")
