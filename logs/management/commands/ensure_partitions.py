"""Create the request log's upcoming partitions now and report rows in default partitions.

The beat schedule runs the same work hourly (logs.tasks); this command is for deploys
(docker-compose runs it after migrate) and for an operator who wants it done right away.
"""

from django.core.management.base import BaseCommand, CommandError

from logs.partitions import is_postgres
from logs.tasks import check_default_partitions, create_upcoming_partitions, retention_classes_in_use


class Command(BaseCommand):
    help = "Create the current and upcoming partitions of every retention class in use (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--periods-ahead", type=int, default=2, help="Periods to create beyond the current one (default 2)."
        )
        parser.add_argument(
            "--fail-on-default-rows",
            action="store_true",
            help="Exit non-zero when a default partition holds rows (for monitoring).",
        )

    def handle(self, *args, periods_ahead, fail_on_default_rows, **options):
        if periods_ahead < 0:
            raise CommandError("--periods-ahead must be 0 or more")
        if not is_postgres():
            self.stdout.write("SQLite: the request log is a plain table, nothing to partition.")
            return
        classes = retention_classes_in_use()
        created = create_upcoming_partitions(periods_ahead=periods_ahead)
        self.stdout.write(f"Retention classes: {', '.join(map(str, classes))} days")
        self.stdout.write(f"Created {len(created)} partitions" + (": " + ", ".join(created) if created else ""))
        stray = check_default_partitions()
        for name, count in sorted(stray.items()):
            self.stderr.write(f"ALARM: {count} rows in default partition {name}")
        if stray and fail_on_default_rows:
            raise CommandError("rows found in default partitions")
