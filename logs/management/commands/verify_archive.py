"""Check archive files against their manifests: sha256, byte size and row count.

Exits non-zero (CommandError) naming every bad file. See logs/archive.py.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from logs.archive import ArchiveError, archived_months, month_bounds, verify_manifest


class Command(BaseCommand):
    help = "Verify the files of an archive_logs directory against its manifest(s)."

    def add_arguments(self, parser):
        parser.add_argument("dir", help="Archive directory (the --to of archive_logs).")
        parser.add_argument("--month", help="Only this month, YYYY-MM (default: every manifest in DIR).")

    def handle(self, *args, dir, month, **options):
        if not Path(dir).is_dir():
            raise CommandError(f"no such directory: {dir}")
        try:
            if month is not None:
                month_bounds(month)
            months = [month] if month else archived_months(dir)
            if not months:
                raise CommandError(f"no manifest-YYYY-MM.json in {dir}")
            problems = []
            checked = 0
            for each in months:
                count, found = verify_manifest(dir, each)
                checked += count
                problems.extend(found)
        except ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        if problems:
            raise CommandError(f"{len(problems)} problem(s) in {dir}:\n" + "\n".join(problems))
        self.stdout.write(f"OK: {checked} files in {len(months)} month(s) match their manifest")
