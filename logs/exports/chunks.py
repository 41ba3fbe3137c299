"""The bytes of one export file: the filtered rows in keyset chunks, encoded (CSV, JSON,
NDJSON), optionally gzip, and the RowCounter that counts them as they go by.

Memory stays flat whatever the row count: rows are read in keyset chunks (CHUNK_SIZE rows,
newest first, each chunk starting after the previous chunk's last (timestamp, id)) through
`selectors.log_page`, the same reads as the log page, and each chunk's bytes are yielded as
soon as they are encoded. Chunks are tuples of the exported columns (`values_list`), not
model instances: building a RequestLog per row was most of the cost (~11k rows/s before).
Not OFFSET (deep chunks would re-read everything before them) and not a server-side cursor
(unavailable behind a transaction-mode pooler such as PgBouncer): every chunk is one short
statement in its own transaction, with the log statement timeout.

CSV on PostgreSQL takes a faster path through `COPY ... TO STDOUT` (logs.exports.sql). The
encoders are in logs.exports.encoders; values are byte for byte the API's (`log_record`).

Log encryption: an account that has (or had) encryption on may have rows whose user_agent,
request_params and error_details are Fernet tokens. Its exports never take the COPY path
(its bytes go out nearly as PostgreSQL sends them); the values path reads each row's
`encrypted` flag too and decrypts those rows' three columns (logs.encryption) before encoding.
"""

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator

from django.db import connection

from logs import encryption, selectors
from logs.encryption_settings import may_have_encrypted_rows
from logs.exports import encoders, sql
from logs.exports.format import EXPORT_FIELDS
from logs.filters import RequestLogFilterSet
from logs.models import ExportFormat

# Rows per keyset query: big enough that the per-query cost disappears in the row cost,
# small enough that a chunk of rows is a few MB at most.
CHUNK_SIZE = 2_000
# Rows per COPY (CSV on PostgreSQL, sql.copy_csv_chunks): a chunk is held as CSV
# (~260 bytes a row, in parts of sql.PART_ROWS rows) until it is sent; each chunk is
# one more statement to plan. Measured on 1 M rows (bench/export_bench.py): 20,000 rows
# peaked the worker at 87-88 MB (idle 73 MB; target < 100 MB). Each chunk's statement
# must finish within LOG_SEARCH_TIMEOUT_MS: 20,000 rows take ~0.1 s.
COPY_CHUNK_SIZE = 20_000
# The COPY path for CSV on PostgreSQL; False sends CSV through the values path too.
USE_COPY = True

# The columns read per row: the export fields in EXPORT_FIELDS order, then the keyset's id.
COLUMNS = sql.COLUMNS


def file_body(
    filterset: RequestLogFilterSet,
    *,
    export_format: str,
    compress: bool,
    counter: "RowCounter | None" = None,
    overlap: bool = False,
    csv_safe: bool = False,
) -> Iterator[bytes]:
    """The bytes of one file of the filtered rows, never an empty part. The first chunk is
    read before this returns (a QueryTimeout comes out here, not mid-download).

    CSV on PostgreSQL comes through COPY (sql.copy_csv_chunks), except with a repeated
    filter: its IN list cannot walk an index in keyset order, and the values path reads such
    sets as one ordered branch per value (selectors._branches). `overlap=True` lets the next
    COPY run while a chunk is being sent (sql.copy_csv_chunks): only when the
    consumer uses the database connection for nothing else until the body ends.
    `csv_safe` (CSV only): formula-like text cells get a leading ', on either path."""
    counter = counter or RowCounter()
    # Unknown account (a filterset not made by selectors.filter_request_logs): decrypt, to be safe.
    decrypt = may_have_encrypted_rows(getattr(filterset, "account", None))
    if decrypt:
        encryption.require_keys()  # a missing key answers before the response starts
    if not decrypt and _copy_applies(filterset, export_format):
        parts = sql.copy_csv_chunks(
            filterset.qs,
            chunk_rows=COPY_CHUNK_SIZE,
            timeout=selectors.statement_timeout,
            overlap=overlap,
            csv_safe=csv_safe,
        )
        first = next(parts, None)
        body = encoders.csv_copied_body(itertools.chain([first] if first else [], parts), counter)
    else:
        encode = encoders.ENCODERS[export_format]
        if csv_safe and export_format == ExportFormat.CSV:
            encode = functools.partial(encoders.csv_body, csv_safe=True)
        chunks = chunks_of(filterset, decrypt=decrypt)
        first = next(chunks)
        body = encode(counter.count(itertools.chain([first], chunks)))
    if compress:
        body = encoders.gzip_body(body)
    return (part for part in body if part)


def _copy_applies(filterset: RequestLogFilterSet, export_format: str) -> bool:
    if not USE_COPY or export_format != ExportFormat.CSV or connection.vendor != "postgresql":
        return False
    cleaned = filterset.form.cleaned_data
    return not any(
        isinstance(cleaned.get(name), list) and len(cleaned[name]) > 1 for name in selectors.SPLITTABLE_FILTERS
    )


def chunks_of(filterset: RequestLogFilterSet, *, decrypt: bool = False) -> Iterator[list]:
    """Lists of at most CHUNK_SIZE rows, newest first, each row exactly once. On PostgreSQL
    the timestamp and cost come formatted by the database (logs.exports.sql). `decrypt`:
    rows stored encrypted come out with their plaintext (the same row shapes)."""
    postgres = connection.vendor == "postgresql"
    fetch = sql.fetch_values if postgres else None
    fields = COLUMNS
    if decrypt:
        # The flag last: keyset_page finds the timestamp and id where they were.
        fields = (*COLUMNS, "encrypted")
        fetch = functools.partial(sql.fetch_values, with_flag=True) if postgres else None
    cursor = None
    while True:
        page = selectors.log_page(filterset=filterset, cursor=cursor, limit=CHUNK_SIZE, fields=fields, fetch=fetch)
        yield _decrypted(page.rows, json_text=postgres) if decrypt else page.rows
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


_USER_AGENT = EXPORT_FIELDS.index("user_agent")
_PARAMS = EXPORT_FIELDS.index("request_params")
_DETAILS = EXPORT_FIELDS.index("error_details")


def _decrypted(rows: list, *, json_text: bool) -> list:
    """Rows without their trailing `encrypted` flag, the encrypted ones' three columns
    decrypted: from jsonb text on PostgreSQL (sql.fetch_values), Python values on SQLite."""
    decrypt = encryption.decrypt_json_texts if json_text else encryption.decrypt_values
    plain = []
    for row in rows:
        values = list(row[:-1])
        if row[-1]:
            values[_USER_AGENT], values[_PARAMS], values[_DETAILS] = decrypt(
                values[_USER_AGENT], values[_PARAMS], values[_DETAILS]
            )
        plain.append(values)
    return plain


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
