"""Import usage logs from a file: Meterlog's export, LiteLLM spend logs, new-api / one-api logs.

The work is in logs/imports/services.py; this command parses options, shows progress on
stderr and prints the summary. Mappings are documented in the README ("Importing logs").
"""

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from console.errors import EncryptionKeyError
from console.models import Account
from logs.imports.services import FORMATS, ImportFormatError, import_file


def _positive_decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = Decimal(0)
    if not number.is_finite() or number <= 0:
        raise CommandError(f"--quota-per-usd must be a positive number, got {value!r}")
    return number


class Command(BaseCommand):
    help = "Import usage logs from a CSV / JSON / NDJSON file (optionally gzip) into an account."

    def add_arguments(self, parser):
        parser.add_argument("account", help="Account slug.")
        parser.add_argument("file", help="File to import (.csv, .json, .ndjson; gzip is detected).")
        parser.add_argument("--format", default="auto", choices=FORMATS)
        parser.add_argument("--batch-size", type=int, default=1000, help="Rows per ingest batch (default 1000).")
        parser.add_argument("--rejected-out", help="Write every rejected row as NDJSON to this path.")
        parser.add_argument(
            "--quota-per-usd",
            help="new-api only: quota units per USD; cost = quota / N (new-api's default is 500000). "
            "Without it, cost is left empty and Meterlog prices the rows.",
        )

    def handle(self, *args, account, file, format, batch_size, rejected_out, quota_per_usd, **options):
        try:
            target = Account.objects.get(slug=account)
        except Account.DoesNotExist:
            raise CommandError(f"no account with slug {account!r}") from None
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {file}")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        quota = _positive_decimal(quota_per_usd) if quota_per_usd is not None else None

        out = open(rejected_out, "w", encoding="utf-8") if rejected_out else None  # noqa: SIM115

        def on_rejected(rejection: dict, raw) -> None:
            out.write(json.dumps({**rejection, "row": raw}, ensure_ascii=False, default=str) + "\n")

        def progress(report) -> None:
            self.stderr.write(
                f"\rimported {report.rows:,} rows ({report.accepted:,} accepted, {report.duplicates:,} duplicates, "
                f"{report.rejected_count:,} rejected)",
                ending="",
            )
            self.stderr.flush()

        try:
            report = import_file(
                account=target,
                path=path,
                fmt=format,
                batch_size=batch_size,
                progress=progress,
                on_rejected=on_rejected if out else None,
                quota_per_usd=quota,
            )
        except (ImportFormatError, EncryptionKeyError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if out:
                out.close()
        self.stderr.write("")
        self.stdout.write(f"format: {report.format}, {report.rows:,} rows read")
        self.stdout.write(
            f"accepted: {report.accepted:,}\nduplicates: {report.duplicates:,}\n"
            f"skipped: {report.skipped:,}\nrejected: {report.rejected_count:,}"
        )
        if report.rejected:
            self.stdout.write(f"first {len(report.rejected)} rejected:")
            for rejection in report.rejected:
                reasons = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in rejection["errors"].items())
                self.stdout.write(f"  line {rejection['line']} ({rejection['request_id'] or '-'}): {reasons}")
        if rejected_out:
            self.stdout.write(f"all rejected rows written to {rejected_out}")
