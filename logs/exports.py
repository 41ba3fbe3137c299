"""Exports of the filtered log: CSV, JSON (array) or NDJSON, optionally gzip, streamed.

Memory stays flat whatever the row count: rows are read in keyset chunks (CHUNK_SIZE rows,
newest first, each chunk starting after the previous chunk's last (timestamp, id)) through
`selectors.log_page`, the same reads as the log page, and each chunk's bytes are yielded as
soon as they are encoded. Chunks are tuples of the exported columns (`values_list`), not
model instances: building a RequestLog per row was most of the cost (~11k rows/s before).
Not OFFSET (deep chunks would re-read everything before them) and not a server-side cursor
(unavailable behind a transaction-mode pooler such as PgBouncer): every chunk is one short
statement in its own transaction, with the log statement timeout.

Values are byte for byte the API's (`log_record`, see `_record`): UTC RFC 3339 timestamps
with microseconds and Z, costs as decimal strings (empty in CSV, null in JSON when
unpriced); JSON-valued fields are compact JSON text in CSV. Columns / keys follow
`EXPORT_FIELDS`, which the importer reads back.
"""

import csv
import io
import itertools
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from console.models import Account
from logs import export_sql, selectors
from logs.api.serializers import format_cost
from logs.export_format import EXPORT_FIELDS, JSON_FIELDS
from logs.filters import RequestLogFilterSet, filter_errors
from logs.models import ExportFormat, ExportRecord

# Rows per keyset query: big enough that the per-query cost disappears in the row cost,
# small enough that a chunk of rows is a few MB at most.
CHUNK_SIZE = 2_000

# The columns read per row: the export fields in EXPORT_FIELDS order, then the keyset's id.
COLUMNS = export_sql.COLUMNS
_OPTIONAL_TEXT = ("api_key", "user_agent", "error_code", "error_message")  # "" -> null, as log_record
_JSON_DEFAULT_EMPTY = ("request_params", "tags")  # NULL -> {}, as log_record

CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.NDJSON: "application/x-ndjson",
}
GZIP_CONTENT_TYPE = "application/gzip"
COMPRESSIONS = ("gzip",)


@dataclass
class ExportRequest:
    format: str
    compress: bool
    filterset: RequestLogFilterSet


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
    filterset = selectors.filter_request_logs(account=account, params=params)
    if not filterset.is_valid():
        errors.update(filter_errors(filterset))
    if errors:
        return None, errors
    return ExportRequest(format=export_format, compress=compress == "gzip", filterset=filterset), {}


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
    name = f"meterlog-{account.slug}-{now:%Y%m%dT%H%M%S}.{export.format}"
    return f"{name}.gz" if export.compress else name


def content_type(export: ExportRequest) -> str:
    return GZIP_CONTENT_TYPE if export.compress else CONTENT_TYPES[export.format]


def start_export(
    *, account: Account, export: ExportRequest, params, user=None, token_hint: str = ""
) -> Iterator[bytes]:
    """Record the export and return the generator of its bytes.

    The first chunk is read here, before the response starts: a filter that runs past the
    statement timeout raises `selectors.QueryTimeout` to the view, which can still answer
    with an error status instead of a truncated file.
    """
    chunks = _chunks(export.filterset)
    first = next(chunks)
    record = ExportRecord.objects.create(
        account=account,
        user=user if user is not None and user.is_authenticated else None,
        token_hint=token_hint,
        format=export.format,
        compress=export.compress,
        filters=filter_params(params),
    )
    return _stream(itertools.chain([first], chunks), export=export, record=record)


def export_response(body: Iterator[bytes], *, account: Account, export: ExportRequest) -> StreamingHttpResponse:
    """The download response the API and the page share."""
    response = StreamingHttpResponse(body, content_type=content_type(export))
    response["Content-Disposition"] = f'attachment; filename="{file_name(account=account, export=export)}"'
    # Proxies (nginx) would otherwise buffer the whole file before passing it on.
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-store"
    return response


def export_records(*, account: Account) -> QuerySet:
    """The account's exports, newest first (the owners' Exports page)."""
    return ExportRecord.objects.filter(account=account).select_related("user").order_by("-created_at", "-id")


def _chunks(filterset: RequestLogFilterSet) -> Iterator[list]:
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


def _stream(chunks: Iterable[list], *, export: ExportRequest, record: ExportRecord) -> Iterator[bytes]:
    encode = {ExportFormat.CSV: _csv, ExportFormat.JSON: _json_array, ExportFormat.NDJSON: _ndjson}[export.format]
    counter = _Counter()
    body = encode(counter.count(chunks))
    if export.compress:
        body = _gzip(body)
    for part in body:
        if part:
            yield part
    # Only reached when the whole body was sent: a client that disconnects closes the
    # generator at its `yield`, and the record keeps finished_at empty.
    record.rows = counter.rows
    record.finished_at = timezone.now()
    record.save(update_fields=["rows", "finished_at"])


class _Counter:
    def __init__(self):
        self.rows = 0

    def count(self, chunks: Iterable[list]) -> Iterator[list]:
        for rows in chunks:
            self.rows += len(rows)
            yield rows


_TIMESTAMP = EXPORT_FIELDS.index("timestamp")
_COST = EXPORT_FIELDS.index("cost")
_OPTIONAL_TEXT_AT = tuple(EXPORT_FIELDS.index(name) for name in _OPTIONAL_TEXT)
_JSON_DEFAULT_EMPTY_AT = tuple(EXPORT_FIELDS.index(name) for name in _JSON_DEFAULT_EMPTY)
_JSON_AT = tuple(EXPORT_FIELDS.index(name) for name in JSON_FIELDS)
_compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _timestamp(value: datetime) -> str:
    # Same text as serializers.format_timestamp (strftime "%Y-%m-%dT%H:%M:%S.%fZ"), at a
    # fraction of the cost; isoformat always prints the six digits with timespec.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _json_text(text: str | None):
    if text is None or text == "{}":
        return {} if text is not None else None
    return json.loads(text)


def _record(row: tuple) -> list:
    """The export values of one `COLUMNS` row, in EXPORT_FIELDS order: what `log_record`
    gives for the same record (tests/logs/test_export_fast_path.py compares the bytes)."""
    if len(row) > len(COLUMNS):  # from export_sql: the timestamp text follows the columns
        values = list(row[: len(EXPORT_FIELDS)])
        values[_TIMESTAMP] = row[len(COLUMNS)]
        for i in _JSON_AT:
            values[i] = _json_text(values[i])
    else:
        values = list(row[:-1])
        values[_TIMESTAMP] = _timestamp(values[_TIMESTAMP])
        cost = values[_COST]
        if cost is not None:
            values[_COST] = format_cost(cost)
    for i in _OPTIONAL_TEXT_AT:
        if not values[i]:
            values[i] = None
    for i in _JSON_DEFAULT_EMPTY_AT:
        if values[i] is None:
            values[i] = {}
    return values


def _csv_row(row: tuple) -> list:
    values = _record(row)
    for i in _JSON_AT:
        if values[i] is not None:
            values[i] = _compact_json(values[i])
    # csv writes None as "" and other values with str(), as the reference encoding did.
    return values


def _csv(chunks: Iterable[list]) -> Iterator[bytes]:
    # csv quotes any cell with a comma, quote or line break (RFC 4180, \r\n rows), so every
    # value survives a round trip through a CSV reader. Formula injection (a cell starting
    # with = + - @ opening as a formula in a spreadsheet) is deliberately NOT guarded by
    # prefixing a quote: that would change the values and break the export → import round
    # trip. Spreadsheet users should import the file as text (README "Exports").
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for rows in chunks:
        writer.writerows(map(_csv_row, rows))
        yield _drain(buffer)
    yield _drain(buffer)  # the header alone when there are no rows


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


def _dump(row: tuple) -> str:
    return _compact_json(dict(zip(EXPORT_FIELDS, _record(row), strict=True)))


def _json_array(chunks: Iterable[list]) -> Iterator[bytes]:
    # "[", the rows separated by ",", "]": one valid JSON document however it is chunked.
    yield b"["
    first = True
    for rows in chunks:
        if not rows:
            continue
        body = ",\n".join(map(_dump, rows))
        yield (("\n" if first else ",\n") + body).encode()
        first = False
    yield b"]\n" if first else b"\n]\n"


def _ndjson(chunks: Iterable[list]) -> Iterator[bytes]:
    for rows in chunks:
        yield "".join(_dump(row) + "\n" for row in rows).encode()


def _gzip(body: Iterable[bytes]) -> Iterator[bytes]:
    # A gzip file (wbits=31: gzip header and trailer), not a transfer encoding. A sync flush
    # per chunk sends each chunk's bytes at once, at a negligible cost in size.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    for part in body:
        yield compressor.compress(part) + compressor.flush(zlib.Z_SYNC_FLUSH)
    yield compressor.flush()
