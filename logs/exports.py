"""Exports of the filtered log: CSV, JSON (array) or NDJSON, optionally gzip, streamed.

Memory stays flat whatever the row count: rows are read in keyset chunks (CHUNK_SIZE rows,
newest first, each chunk starting after the previous chunk's last (timestamp, id)) through
`selectors.log_page`, the same reads as the log page, and each chunk's bytes are yielded as
soon as they are encoded. Chunks are tuples of the exported columns (`values_list`), not
model instances: building a RequestLog per row was most of the cost (~11k rows/s before).
Not OFFSET (deep chunks would re-read everything before them) and not a server-side cursor
(unavailable behind a transaction-mode pooler such as PgBouncer): every chunk is one short
statement in its own transaction, with the log statement timeout.

CSV on PostgreSQL takes a faster path through `COPY ... TO STDOUT` (logs.export_sql). The
encoders are in logs.export_encoders; values are byte for byte the API's (`log_record`).
Columns / keys follow `EXPORT_FIELDS`, which the importer reads back. A zip with one file
per month is logs.export_zip; large browser exports run as jobs (logs.export_jobs).
"""

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.http import QueryDict, StreamingHttpResponse
from django.utils import timezone

from console.models import Account
from logs import export_encoders, export_sql, selectors
from logs.filters import RANGE_PRESETS, RequestLogFilterSet, filter_errors
from logs.models import ExportFormat, ExportRecord, ExportSplit

# Rows per keyset query: big enough that the per-query cost disappears in the row cost,
# small enough that a chunk of rows is a few MB at most.
CHUNK_SIZE = 2_000
# Rows per COPY (CSV on PostgreSQL, export_sql.copy_csv_chunks): a chunk is held as CSV
# (~260 bytes a row, in parts of export_sql.PART_ROWS rows) until it is sent; each chunk is
# one more statement to plan. Measured on 1 M rows (bench/export_bench.py): 20,000 rows
# peaked the worker at 87-88 MB (idle 73 MB; target < 100 MB). Each chunk's statement
# must finish within LOG_SEARCH_TIMEOUT_MS: 20,000 rows take ~0.1 s.
COPY_CHUNK_SIZE = 20_000
# The COPY path for CSV on PostgreSQL; False sends CSV through the values path too.
USE_COPY = True

# The columns read per row: the export fields in EXPORT_FIELDS order, then the keyset's id.
COLUMNS = export_sql.COLUMNS

CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.NDJSON: "application/x-ndjson",
}
GZIP_CONTENT_TYPE = "application/gzip"
ZIP_CONTENT_TYPE = "application/zip"
COMPRESSIONS = ("gzip",)
SPLITS = ("month",)
# split=month over an explicit start/end: at most this many members (ten years).
MAX_MONTHS = 120


@dataclass
class ExportRequest:
    format: str
    compress: bool
    filterset: RequestLogFilterSet
    split: str = ExportSplit.NONE  # "month": a zip of one gzip file per calendar month (logs.export_zip)


def parse_export_request(*, account: Account, params) -> tuple[ExportRequest | None, dict[str, list[str]]]:
    """Validate `format`, `compress` and the log list's filters (the shared FilterSet);
    returns (request, {}) or (None, {parameter: [messages]}) with every bad parameter."""
    errors: dict[str, list[str]] = {}
    export_format = params.get("format") or ExportFormat.CSV
    if export_format not in ExportFormat.values:
        errors["format"] = [f"Unknown format {export_format!r}; use one of: {', '.join(ExportFormat.values)}."]
    compress = params.get("compress") or ""
    if compress and compress not in COMPRESSIONS:
        errors["compress"] = [f"Unknown compression {compress!r}; use gzip or leave it out."]
    split = params.get("split") or ""
    if split and split not in SPLITS:
        errors["split"] = [f"Unknown split {split!r}; use month or leave it out."]
    filterset = selectors.filter_request_logs(account=account, params=params)
    if not filterset.is_valid():
        errors.update(filter_errors(filterset))
    elif split:
        start, end = filterset.form.cleaned_data.get("start"), filterset.form.cleaned_data.get("end")
        if start and end and _months_between(start, end) > MAX_MONTHS:
            errors["split"] = [f"split=month makes at most {MAX_MONTHS} files; narrow start/end."]
    if errors:
        return None, errors
    # A zip's members are always gzip files.
    compress = compress == "gzip" or bool(split)
    return ExportRequest(format=export_format, compress=compress, filterset=filterset, split=split), {}


def _months_between(start: datetime, end: datetime) -> int:
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    return (end.year - start.year) * 12 + end.month - start.month + 1


def resolved_filters(*, export: ExportRequest, params, now: datetime | None = None) -> dict:
    """`filter_params` with the time bounds made absolute: start/end as UTC RFC 3339 (they may
    have been the viewer's local time) and a `range` preset turned into the start it meant
    now. A job run later by a worker (no viewer zone, another "now") or one month of a zip
    reads exactly the rows the request meant."""
    stored = filter_params(params)
    cleaned = export.filterset.form.cleaned_data
    stored.pop("range", None)
    start, end = cleaned.get("start"), cleaned.get("end")
    if start is None and cleaned.get("range"):
        start = (now or timezone.now()) - RANGE_PRESETS[cleaned["range"]][1]
    for name, value in (("start", start), ("end", end)):
        if value is not None:
            stored[name] = utc_text(value)
    return stored


def utc_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def params_querydict(filters: dict, **extra: str) -> QueryDict:
    """A stored filter dict ({name: value or [values]}) as request parameters."""
    params = QueryDict(mutable=True)
    for name, value in {**filters, **extra}.items():
        params.setlist(name, value if isinstance(value, list) else [value])
    return params


def count_at_most(*, filterset: RequestLogFilterSet, cap: int) -> int:
    """The filtered row count, but at most cap + 1: "more than cap" without counting them all
    (the statement stops after cap + 1 rows). Raises QueryTimeout past the statement timeout."""
    queryset = filterset.qs.order_by()
    with selectors.statement_timeout():
        return queryset[: cap + 1].count()


def is_large(*, filterset: RequestLogFilterSet) -> bool:
    """More rows than METERLOG_EXPORT_ASYNC_ROWS: the browser gets a job, not a stream. A set
    that cannot even be counted to the threshold within the statement timeout is large too."""
    threshold = settings.METERLOG_EXPORT_ASYNC_ROWS
    try:
        return count_at_most(filterset=filterset, cap=threshold) > threshold
    except selectors.QueryTimeout:
        return True


def spans_months(*, filterset: RequestLogFilterSet, now: datetime | None = None) -> bool:
    """Whether the filters cover more than a month (the menu then offers the zip by month):
    start (or the range preset) to end (or now); no start at all is the whole log."""
    if not filterset.is_valid():
        return False
    cleaned = filterset.form.cleaned_data
    now = now or timezone.now()
    start = cleaned.get("start")
    if start is None and cleaned.get("range"):
        start = now - RANGE_PRESETS[cleaned["range"]][1]
    if start is None:
        return True
    end = cleaned.get("end") or now
    return _months_between(start, end) > 1 and (end - start).days > 31


def filter_params(params) -> dict:
    """The filter parameters of a request's QueryDict as stored on the ExportRecord: known filter names
    only (format, compress, cursor and stray parameters are not filters)."""
    stored = {}
    for name in params:
        if name not in RequestLogFilterSet.base_filters:
            continue
        values = [value for value in params.getlist(name) if value != ""]
        if values:
            stored[name] = values[0] if len(values) == 1 else values
    return stored


def file_name(*, account: Account, export: ExportRequest, now=None) -> str:
    now = (now or timezone.now()).astimezone(UTC)
    if export.split:
        return f"meterlog-{account.slug}-{now:%Y%m%dT%H%M%S}-by-month.zip"
    name = f"meterlog-{account.slug}-{now:%Y%m%dT%H%M%S}.{export.format}"
    return f"{name}.gz" if export.compress else name


def content_type(export: ExportRequest) -> str:
    if export.split:
        return ZIP_CONTENT_TYPE
    return GZIP_CONTENT_TYPE if export.compress else CONTENT_TYPES[export.format]


def start_export(
    *, account: Account, export: ExportRequest, params, user=None, token_hint: str = ""
) -> Iterator[bytes]:
    """Record the export and return the generator of its bytes.

    The first read runs here, before the response starts: a filter that runs past the
    statement timeout raises `selectors.QueryTimeout` to the view, which can still answer
    with an error status instead of a truncated file.
    """
    counter = RowCounter()
    # Nothing but the WSGI server reads this body, so CSV may overlap its COPY chunks.
    body = open_body(account=account, export=export, params=params, counter=counter, overlap=True)
    record = ExportRecord.objects.create(
        account=account,
        user=user if user is not None and user.is_authenticated else None,
        token_hint=token_hint,
        format=export.format,
        compress=export.compress,
        split=export.split,
        filters=filter_params(params),
    )
    return _stream(body, record=record, counter=counter)


def open_body(
    *, account: Account, export: ExportRequest, params, counter: "RowCounter", overlap: bool = False
) -> Iterator[bytes]:
    """The bytes of the export (a single file, or the zip by month); the first query runs
    before this returns. `counter` counts the rows as they are encoded. `overlap`: see
    file_body (a single file only)."""
    if export.split == ExportSplit.MONTH:
        from logs import export_zip  # it encodes its members with this module's encoders

        return export_zip.zip_by_month(
            account=account, export=export, filters=resolved_filters(export=export, params=params), counter=counter
        )
    return file_body(
        export.filterset, export_format=export.format, compress=export.compress, counter=counter, overlap=overlap
    )


def file_body(
    filterset: RequestLogFilterSet,
    *,
    export_format: str,
    compress: bool,
    counter: "RowCounter | None" = None,
    overlap: bool = False,
) -> Iterator[bytes]:
    """The bytes of one file of the filtered rows, never an empty part. The first chunk is
    read before this returns (a QueryTimeout comes out here, not mid-download).

    CSV on PostgreSQL comes through COPY (export_sql.copy_csv_chunks), except with a repeated
    filter: its IN list cannot walk an index in keyset order, and the values path reads such
    sets as one ordered branch per value (selectors._branches). `overlap=True` lets the next
    COPY run while a chunk is being sent (export_sql.copy_csv_chunks): only when the
    consumer uses the database connection for nothing else until the body ends."""
    counter = counter or RowCounter()
    if _copy_applies(filterset, export_format):
        parts = export_sql.copy_csv_chunks(
            filterset.qs, chunk_rows=COPY_CHUNK_SIZE, timeout=selectors.statement_timeout, overlap=overlap
        )
        first = next(parts, None)
        body = export_encoders.csv_copied_body(itertools.chain([first] if first else [], parts), counter)
    else:
        encode = export_encoders.ENCODERS[export_format]
        chunks = chunks_of(filterset)
        first = next(chunks)
        body = encode(counter.count(itertools.chain([first], chunks)))
    if compress:
        body = export_encoders.gzip_body(body)
    return (part for part in body if part)


def _copy_applies(filterset: RequestLogFilterSet, export_format: str) -> bool:
    if not USE_COPY or export_format != ExportFormat.CSV or connection.vendor != "postgresql":
        return False
    cleaned = filterset.form.cleaned_data
    return not any(
        isinstance(cleaned.get(name), list) and len(cleaned[name]) > 1 for name in selectors.SPLITTABLE_FILTERS
    )


def export_response(body: Iterator[bytes], *, account: Account, export: ExportRequest) -> StreamingHttpResponse:
    """The download response the API and the page share."""
    response = StreamingHttpResponse(body, content_type=content_type(export))
    response["Content-Disposition"] = f'attachment; filename="{file_name(account=account, export=export)}"'
    # Proxies (nginx) would otherwise buffer the whole file before passing it on.
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-store"
    return response


def export_records(*, account: Account, user=None) -> QuerySet:
    """The account's exports, newest first: all of them (owners), or one user's own (a member
    following the job they started)."""
    records = ExportRecord.objects.filter(account=account)
    if user is not None:
        records = records.filter(user=user)
    return records.select_related("user").order_by("-created_at", "-id")


def chunks_of(filterset: RequestLogFilterSet) -> Iterator[list]:
    """Lists of at most CHUNK_SIZE rows, newest first, each row exactly once. On PostgreSQL
    the timestamp and cost come formatted by the database (logs.export_sql)."""
    fetch = export_sql.fetch_values if connection.vendor == "postgresql" else None
    cursor = None
    while True:
        page = selectors.log_page(filterset=filterset, cursor=cursor, limit=CHUNK_SIZE, fields=COLUMNS, fetch=fetch)
        yield page.rows
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _stream(body: Iterator[bytes], *, record: ExportRecord, counter: "RowCounter") -> Iterator[bytes]:
    for part in body:
        if part:
            yield part
    # Only reached when the whole body was sent: a client that disconnects closes the
    # generator at its `yield`, and the record keeps finished_at empty.
    record.rows = counter.rows
    record.finished_at = timezone.now()
    record.save(update_fields=["rows", "finished_at"])


class RowCounter:
    """Counts rows as chunks go by; `on_chunk(rows so far)` runs after each chunk (a job's
    progress)."""

    def __init__(self, on_chunk: Callable[[int], None] | None = None):
        self.rows = 0
        self.on_chunk = on_chunk

    def count(self, chunks: Iterable[list]) -> Iterator[list]:
        for rows in chunks:
            yield rows
            self.add(len(rows))

    def add(self, rows: int) -> None:
        self.rows += rows
        if self.on_chunk is not None:
            self.on_chunk(self.rows)
