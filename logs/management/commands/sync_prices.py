"""Seed and update the model price list from the genai-prices package's offline snapshot.

Safe to run on every deploy: a second run writes nothing. Prices an operator set in the
admin (source "operator") and accounts' own prices are never touched. The mapping and its
limits are described in logs/prices/sync.py.
"""

from django.core.management.base import BaseCommand

from logs.prices.sync import prices_sync


class Command(BaseCommand):
    help = "Seed/update ModelPrice from genai-prices (idempotent; operator prices are left alone)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would change, write nothing.")
        parser.add_argument(
            "--show-skipped", action="store_true", help="List the snapshot models that cannot be expressed."
        )

    def handle(self, *args, dry_run, show_skipped, **options):
        result = prices_sync(dry_run=dry_run)
        if show_skipped:
            for model_id in result.not_expressible:
                self.stdout.write(f"skipped {model_id}")
        prefix = "dry run: " if dry_run else ""
        self.stdout.write(f"{prefix}{result.summary()}")
