"""Purge the log rows past each account's retention, as the daily beat task does.

Prints, for every account looked at, its period, its cutoff and the rows deleted (or, with
--dry-run, the rows that would be); then the partitions dropped and the rollup rows past
ROLLUP_RETENTION_MONTHS. Each run is recorded (admin: Purge runs). With archive before purge
on, each account's archived files and rows; an account whose archive failed keeps its rows
and the command exits non-zero (after the other accounts have been purged).
"""

from datetime import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from console.models import Account
from logs.retention import archiving
from logs.retention.models import PurgeStatus
from logs.retention.services import PurgeBusy, purge_expired_logs


class Command(BaseCommand):
    help = "Delete the request log rows older than each account's retention period (and old rollups)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument(
            "--account", metavar="SLUG", help="Only this account's rows (batched DELETEs; no partition is dropped)."
        )

    def handle(self, *args, dry_run, account, **options):
        if account is not None and not Account.objects.filter(slug=account).exists():
            raise CommandError(f"no account with slug {account!r}")
        try:
            run = purge_expired_logs(dry_run=dry_run, slug=account)
        except PurgeBusy as exc:
            self.stdout.write(f"Nothing done: {exc}.")
            return
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"Purge run {run.pk}{' (dry run)' if dry_run else ''}:")
        for entry in run.accounts:
            cutoff = datetime.fromisoformat(entry["cutoff"]).strftime("%Y-%m-%d %H:%M:%S UTC")
            rows = entry["would_delete"] if dry_run else entry["deleted"]
            self.stdout.write(f"  {entry['slug']}: {entry['retention_days']} days, cutoff {cutoff}, {verb} {rows} rows")
            files = entry.get("archived", {}).get("files")
            if files:
                self.stdout.write(
                    f"    archived {entry['archived']['rows']} rows to {len(files)} file(s): {', '.join(files)}"
                )
            if "archived_until" in entry:
                until = datetime.fromisoformat(entry["archived_until"]).strftime("%Y-%m-%d %H:%M:%S UTC")
                self.stdout.write(f"    archive out of time: only rows before {until} archived and deleted")
            if "archive_error" in entry:
                self.stdout.write(f"    archive FAILED, rows kept: {entry['archive_error']}")
            if entry.get("unarchived"):
                self.stdout.write(f"    warning: {entry['unarchived']} deleted rows are not in the archive")
        for part in run.partitions:
            rows = "" if part["rows"] is None else f" ({part['rows']} rows)"
            self.stdout.write(f"  partition {'to drop' if dry_run else 'dropped'}: {part['name']}{rows}")
        if run.rollups:
            tables = ", ".join(f"{name} {rows}" for name, rows in run.rollups["tables"].items())
            self.stdout.write(
                f"  rollups before {run.rollups['cutoff']} ({run.rollups['months']} months), {verb}: {tables}"
            )
        if run.status == PurgeStatus.PARTIAL:
            self.stdout.write("  Stopped early (time budget or a lock timeout): the next run continues.")
        total = sum(e["would_delete"] for e in run.accounts) if dry_run else run.deleted
        self.stdout.write(f"Total {verb}: {total} rows.")
        archived = archiving.summary(run)
        if archived is not None:
            self.stdout.write(
                f"Archived: {archived['rows']} rows in {archived['files']} file(s)"
                + f" under {settings.METERLOG_ARCHIVE_DIR}"
                + (f"; failed for {', '.join(archived['failed'])}" if archived["failed"] else "")
                + "."
            )
        if run.status == PurgeStatus.FAILED:
            raise CommandError(f"purge run {run.pk}: {run.error}")
