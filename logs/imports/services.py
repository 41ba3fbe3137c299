"""Import a file of usage logs into an account, in batches through the ingest pipeline.

Every batch goes through `ingest_records`, so an imported row is validated, masked,
priced and deduplicated exactly like one sent to POST /api/v1/ingest: re-importing a
file stores nothing new (every row counts as a duplicate).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path

from django.utils import timezone

from console.models import Account
from logs.imports import mappings, readers
from logs.imports.readers import BadRow
from logs.ingest.services import ingest_records
from logs.ingest.validation import NON_FIELD, validate_record

FORMATS = ("auto", *mappings.FORMATS)
FIRST_REJECTED = 10


class ImportFormatError(Exception):
    """The file cannot be read in the format asked for (or no format was recognised)."""


@dataclass
class ImportReport:
    format: str
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected_count: int = 0
    # The first FIRST_REJECTED rejections: {"line", "request_id", "errors"}; every one goes
    # to `on_rejected` (the command's --rejected-out) so a big file does not pile them up here.
    rejected: list[dict] = field(default_factory=list)


def resolve_format(path: Path, fmt: str) -> tuple[str, str]:
    """(format, container) for the file; `fmt` "auto" is detected from the columns / keys."""
    if fmt not in FORMATS:
        raise ImportFormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    try:
        container = readers.sniff_container(path)
        keys = readers.header_keys(path, container)
    except readers.FileFormatError as exc:
        raise ImportFormatError(str(exc)) from exc
    if fmt == "auto":
        if keys is None:
            raise ImportFormatError(
                f"cannot tell the format of {path.name}: its first row does not end within its first "
                f"{readers.HEAD_BYTES // (1024 * 1024)} MB; pass --format"
            )
        detected = mappings.detect(keys)
        if detected is None:
            shown = ", ".join(sorted(keys)[:12]) or "none"
            raise ImportFormatError(
                f"cannot tell the format of {path.name} (a {container.upper()} file with columns/keys: {shown}); "
                "pass --format"
            )
        if detected == "meterlog":
            detected = "meterlog-csv" if container == readers.CSV else "meterlog-ndjson"
        fmt = detected
    if fmt == "meterlog-csv" and container != readers.CSV:
        raise ImportFormatError(f"{path.name} is {container.upper()}, not CSV; use --format meterlog-ndjson")
    if fmt == "meterlog-ndjson" and container == readers.CSV:
        raise ImportFormatError(f"{path.name} is CSV, not NDJSON/JSON; use --format meterlog-csv")
    return fmt, container


def _mapper(fmt: str, quota_per_usd: Decimal | None) -> Callable:
    if fmt == "litellm":
        return mappings.litellm_row
    if fmt == "new-api":
        return partial(mappings.new_api_row, quota_per_usd=quota_per_usd)
    return partial(mappings.meterlog_row, from_csv=fmt == "meterlog-csv")


def import_file(
    *,
    account: Account,
    path: Path | str,
    fmt: str = "auto",
    batch_size: int = 1000,
    progress: Callable[[ImportReport], None] | None = None,
    on_rejected: Callable[[dict, object], None] | None = None,
    quota_per_usd: Decimal | None = None,
) -> ImportReport:
    """Import `path` into `account`; `progress(report)` runs after each batch and
    `on_rejected(rejection, raw_row)` for every rejected row."""
    path = Path(path)
    fmt, container = resolve_format(path, fmt)
    mapper = _mapper(fmt, quota_per_usd)
    report = ImportReport(format=fmt)
    # The rows of the current batch in file order: (line, record, raw row, the mapping's errors).
    # Rows the mapping already rejected wait here too, so rejections are reported in line order.
    batch: list[tuple[int, dict, object, dict | None]] = []

    def reject(line: int, request_id, errors: dict, raw) -> None:
        rejection = {"line": line, "request_id": request_id, "errors": errors}
        report.rejected_count += 1
        if len(report.rejected) < FIRST_REJECTED:
            report.rejected.append(rejection)
        if on_rejected is not None:
            if isinstance(raw, dict):  # LiteLLM rows carry the prompt and the completion text
                raw = {key: value for key, value in raw.items() if key not in mappings.MESSAGES_KEYS}
            on_rejected(rejection, raw)

    def flush() -> None:
        if not batch:
            return
        rejections = []
        valid = []
        for entry in batch:
            line, record, raw, errors = entry
            if errors is None:
                valid.append(entry)
            else:
                request_id = record.get("request_id")
                rejections.append((line, request_id if isinstance(request_id, str) else None, errors, raw))
        if valid:
            # An import runs for minutes: an owner's privacy or encryption switch applies
            # from the next batch.
            account.refresh_from_db(fields=["privacy_mode", "encryption_enabled"])
            result = ingest_records(account=account, records=[entry[1] for entry in valid], source="import")
            report.accepted += result.accepted
            report.duplicates += result.duplicates
            for item in result.rejected:
                line, _record, raw, _errors = valid[item["index"]]
                rejections.append((line, item["request_id"], item["errors"], raw))
        for rejection in sorted(rejections, key=lambda r: r[0]):
            reject(*rejection)
        batch.clear()
        if progress is not None:
            progress(report)

    try:
        for line, row in readers.iter_rows(path, container):
            report.rows += 1
            if isinstance(row, BadRow):
                batch.append((line, {}, row.raw, {NON_FIELD: [row.message]}))
            else:
                mapped = mapper(row)
                if mapped is mappings.SKIP:
                    report.skipped += 1
                    continue
                record, errors = mapped
                if errors:
                    # The file's own faults together with what validation finds in the rest.
                    rest = {name: value for name, value in record.items() if name not in errors}
                    _clean, more = validate_record(rest, now=timezone.now())
                    errors.update({name: value for name, value in (more or {}).items() if name not in errors})
                batch.append((line, record, row, errors or None))
            if len(batch) >= batch_size:
                flush()
        flush()
    except readers.FileFormatError as exc:
        raise ImportFormatError(f"{exc} (after {report.rows:,} rows, {report.accepted:,} accepted)") from exc
    return report
