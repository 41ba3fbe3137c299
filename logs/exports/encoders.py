"""Encoders of export chunks (logs.exports.chunks): CSV, JSON array, NDJSON and gzip, byte for byte
what encoding `log_record` of each row gives (tests/logs/test_export_fast_path.py).

Values are the API's (`log_record`, see `_record`): UTC RFC 3339 timestamps with
microseconds and Z, costs as decimal strings (empty in CSV, null in JSON when unpriced);
JSON-valued fields are compact JSON text in CSV. Columns / keys follow `EXPORT_FIELDS`.
With csv_safe, CSV text cells starting with FORMULA_PREFIXES get a leading ' (as sql.py's
COPY path does, byte for byte).
"""

import csv
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from logs.api.serializers import format_cost
from logs.exports.format import EXPORT_FIELDS, FORMULA_PREFIXES, FORMULA_TEXT_FIELDS, JSON_FIELDS
from logs.exports.sql import COLUMNS
from logs.models import ExportFormat

_OPTIONAL_TEXT = ("api_key", "user_agent", "error_code", "error_message")  # "" -> null, as log_record
_JSON_DEFAULT_EMPTY = ("request_params", "tags")  # NULL -> {}, as log_record

_TIMESTAMP = EXPORT_FIELDS.index("timestamp")
_COST = EXPORT_FIELDS.index("cost")
_OPTIONAL_TEXT_AT = tuple(EXPORT_FIELDS.index(name) for name in _OPTIONAL_TEXT)
_JSON_DEFAULT_EMPTY_AT = tuple(EXPORT_FIELDS.index(name) for name in _JSON_DEFAULT_EMPTY)
_JSON_AT = tuple(EXPORT_FIELDS.index(name) for name in JSON_FIELDS)
_FORMULA_TEXT_AT = tuple(EXPORT_FIELDS.index(name) for name in FORMULA_TEXT_FIELDS)
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
    if len(row) > len(COLUMNS):  # from logs.exports.sql: the timestamp text follows the columns
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


def _safe_csv_row(row: tuple) -> list:
    values = _csv_row(row)
    for i in _FORMULA_TEXT_AT:
        value = values[i]
        if value and value.startswith(FORMULA_PREFIXES):
            values[i] = "'" + value
    return values


def csv_body(chunks: Iterable[list], *, csv_safe: bool = False) -> Iterator[bytes]:
    # csv quotes any cell with a comma, quote or line break (RFC 4180, \r\n rows), so every
    # value survives a round trip through a CSV reader. Formula injection (a cell starting
    # with = + - @ opening as a formula in a spreadsheet) is guarded only with csv_safe: the
    # leading ' changes the values, so that file no longer imports back unchanged.
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    row_cells = _safe_csv_row if csv_safe else _csv_row
    for rows in chunks:
        writer.writerows(map(row_cells, rows))
        yield _drain(buffer)
    yield _drain(buffer)  # the header alone when there are no rows


def _csv_header() -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(EXPORT_FIELDS)
    return buffer.getvalue().encode()


_CSV_HEADER = _csv_header()


def csv_copied_body(parts: Iterable[tuple[int, bytes]], counter) -> Iterator[bytes]:
    """CSV from COPY parts: (rows, CSV bytes) each; rows is 0 but on a chunk's last part."""
    yield _CSV_HEADER
    for rows, data in parts:
        yield data
        if rows:
            counter.add(rows)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


def _dump(row: tuple) -> str:
    return _compact_json(dict(zip(EXPORT_FIELDS, _record(row), strict=True)))


def json_array_body(chunks: Iterable[list]) -> Iterator[bytes]:
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


def ndjson_body(chunks: Iterable[list]) -> Iterator[bytes]:
    for rows in chunks:
        yield "".join(_dump(row) + "\n" for row in rows).encode()


def gzip_body(body: Iterable[bytes]) -> Iterator[bytes]:
    # A gzip file (wbits=31: gzip header and trailer), not a transfer encoding. A sync flush
    # per chunk sends each chunk's bytes at once, at a negligible cost in size.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    for part in body:
        yield compressor.compress(part) + compressor.flush(zlib.Z_SYNC_FLUSH)
    yield compressor.flush()


ENCODERS = {ExportFormat.CSV: csv_body, ExportFormat.JSON: json_array_body, ExportFormat.NDJSON: ndjson_body}
