"""PostgreSQL-side formatting of export chunks (logs.exports), byte for byte `log_record`'s values.

A chunk's queryset (keyset-bounded, ordered, limited; possibly a UNION ALL of branches) is
compiled and wrapped in a SELECT that formats the timestamp and the cost in SQL, and its rows
skip Django's per-value converters (a datetime, a Decimal and three json.loads per row were
half of the export's time): to_char's US is the six microsecond digits; trim_scale drops
trailing zeros and numeric text never has an exponent (format_cost's rules). JSON columns
arrive as the jsonb text that JSONField would json.loads, so logs.exports decodes that same
text; inet arrives as its output text, as through the ORM.

Tried and dropped: building each whole CSV line in SQL (JSON compacted with regexp_replace,
numbers checked with jsonb_path_query) was slower than Python (1 M rows > 120 s).

CSV goes faster still (`copy_csv_chunks`): each keyset chunk is one `COPY (SELECT ...) TO
STDOUT WITH (FORMAT csv)` whose bytes are sent nearly as they come. PostgreSQL's CSV is the
csv module's for these values (same quoting rule: a value with a comma, a quote, \r or \n is
quoted, quotes doubled) once empty strings are made NULL (PostgreSQL writes "" for them, the
exporter writes nothing), except that rows end with \n and the JSON cells differ (jsonb text
has spaces and its own number text). A COPY row arrives as one protocol message, so each row
is fixed up with two byte searches and one dict lookup, no CSV parsing:

    <id>,<the 16 non-JSON export columns>,<\x1f details \x1e params \x1e tags>\n

The id (for the next chunk's keyset) is cut off the front; the last field, found by its
\x1f (raw control characters never occur in jsonb text, and the field is last, so the last
\x1f of the row is its start), is replaced through a memo by the three JSON cells exactly as
the csv module writes them, and \r\n. request_params and tags repeat heavily, so almost
every row is a memo hit. Each chunk is its own statement in its own transaction (statement
timeout, no server-side cursor: fine behind a transaction-mode pooler) and is sent before
the next is read.
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import DatabaseError, OperationalError, connection
from django.db.models import QuerySet

from logs.export_format import EXPORT_FIELDS, JSON_FIELDS

COLUMNS = (*EXPORT_FIELDS, "id")
TIMESTAMP_TEXT = """to_char(t."timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _value_sql(name: str) -> str:
    if name == "cost":
        return "trim_scale(t.cost)::text"
    return f't."{name}"'


_VALUES_SELECT = ", ".join(_value_sql(name) for name in COLUMNS) + f", {TIMESTAMP_TEXT}"


def _compiled(queryset: QuerySet) -> tuple[str, tuple] | None:
    try:
        return queryset.query.get_compiler(using=queryset.db).as_sql()
    except EmptyResultSet:  # e.g. an account without rows: no retention class to read
        return None


def fetch_values(queryset: QuerySet) -> list[tuple]:
    """Rows: the COLUMNS values (raw timestamp and id, cost as text), then the timestamp text."""
    compiled = _compiled(queryset)
    if compiled is None:
        return []
    sql, params = compiled
    wrapped = f'SELECT {_VALUES_SELECT} FROM ({sql}) t ORDER BY t."timestamp" DESC, t."id" DESC'
    with connection.cursor() as cursor:
        cursor.execute(wrapped, params)
        return cursor.fetchall()


# --- COPY ... TO STDOUT (CSV) -----------------------------------------------------------

compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Empty text is exported as an empty cell; NULL is how PostgreSQL's CSV writes one.
_TEXT = ("request_id", "model", "status", "api_key", "user_agent", "error_code", "error_message")
_LEAD = EXPORT_FIELDS[: EXPORT_FIELDS.index(JSON_FIELDS[0])]
if EXPORT_FIELDS[len(_LEAD) :] != JSON_FIELDS:  # the row fix-up below relies on it
    raise RuntimeError("the JSON columns must be the last export fields")


def _lead_sql(name: str) -> str:
    if name == "timestamp":
        return TIMESTAMP_TEXT
    if name in _TEXT:
        return f"NULLIF(t.\"{name}\", '')"
    return _value_sql(name)


_JSON_TAIL_SQL = "E'\\x1f' || " + " || E'\\x1e' || ".join(f"coalesce(t.\"{name}\"::text, '')" for name in JSON_FIELDS)
_COPY_SELECT = ", ".join(['t."id"', *map(_lead_sql, _LEAD), _JSON_TAIL_SQL])
_SENTINEL = b"\x1f"
_QUOTE = ord('"')
# Distinct JSON tails remembered per export before the memo starts over (bounded memory:
# 20,000 held ~10 MB; request_params and tags repeat so much that 4,000 still nearly always hit).
MEMO_SIZE = 4_000


class _JsonTails(dict):
    """The row's last field as PostgreSQL wrote it, from the character before its \x1f (a
    quote when PostgreSQL quoted it, else the comma before it) to the end -> the bytes that
    replace it: the three JSON cells as logs.exports writes them (json.loads then compact
    dumps; SQL NULL and JSON null give "" for error_details, "{}" for the others) and \r\n."""

    def __missing__(self, tail: bytes) -> bytes:
        if len(self) >= MEMO_SIZE:
            self.clear()
        quoted = tail[0] == _QUOTE
        text = tail[2:-2] if quoted else tail[2:-1]  # drop '"\x1f' / ',\x1f' and '"\n' / '\n'
        if quoted:
            text = text.replace(b'""', b'"')
        texts = text.decode().split("\x1e")
        cells = [_json_cell(value, empty) for value, empty in zip(texts, ("", "{}", "{}"), strict=True)]
        buffer = io.StringIO()
        csv.writer(buffer).writerow(cells)
        # Quoted: the comma before the field stays in the row; unquoted: it is in `tail`.
        cell_bytes = buffer.getvalue().encode()
        self[tail] = cell_bytes if quoted else b"," + cell_bytes
        return self[tail]


def _json_cell(text: str, empty: str) -> str:
    value = json.loads(text) if text else None
    return empty if value is None else compact_json(value)


def copy_csv_chunks(queryset: QuerySet, *, chunk_rows: int, timeout) -> Iterator[tuple[int, bytes]]:
    """(rows, CSV bytes without header) per keyset chunk of `queryset` (the filtered, unordered
    rows), newest first, byte for byte what logs.exports writes through the csv module.
    `timeout` is selectors.statement_timeout (passed in: selectors is above this module)."""
    from logs.pagination import after_cursor, encode_cursor

    tails = _JsonTails()
    cursor = None
    while True:
        chunk = after_cursor(queryset, cursor).order_by("-timestamp", "-id").values_list(*COLUMNS)[:chunk_rows]
        compiled = _compiled(chunk)
        if compiled is None:
            return
        sql, sql_params = compiled
        copy_sql = (
            f'COPY (SELECT {_COPY_SELECT} FROM ({sql}) t ORDER BY t."timestamp" DESC, t."id" DESC) '
            "TO STDOUT WITH (FORMAT csv)"
        )
        lines = []
        append = lines.append
        row = b""
        with timeout():
            # One message per row (the protocol's rule for COPY TO).
            for row in _copy_out(copy_sql, sql_params):
                start = row.find(b",") + 1
                end = row.rfind(_SENTINEL) - 1
                append(row[start:end] + tails[row[end:]])
        if lines:
            yield len(lines), b"".join(lines)
        if len(lines) < chunk_rows:
            return
        last = next(csv.reader(io.StringIO(row.decode(), newline="")))
        cursor = encode_cursor(datetime.fromisoformat(last[1 + EXPORT_FIELDS.index("timestamp")]), int(last[0]))


def _copy_out(copy_sql: str, params) -> Iterator[bytes]:
    """The rows of a COPY TO STDOUT, read straight from libpq (PQgetCopyData): psycopg's Copy
    object costs a generator round trip per row, as much as the rest of the row's work.
    The statement has its parameters merged client-side, as psycopg's own copy() does. On a
    failure part-way the connection is closed (it would still be in COPY state)."""
    from psycopg import ClientCursor, pq

    connection.ensure_connection()
    conn = connection.connection
    query = ClientCursor(conn).mogrify(copy_sql, params or None).encode(conn.info.encoding)
    pgconn = conn.pgconn
    with conn.lock:
        try:
            pgconn.send_query(query)
            while pgconn.flush():
                pass
            result = pgconn.get_result()
            if result is None or result.status != pq.ExecStatus.COPY_OUT:
                _raise_results(pgconn, result)
                raise OperationalError("COPY TO STDOUT did not start")
            get_copy_data = pgconn.get_copy_data
            while True:
                size, data = get_copy_data(0)
                if size < 0:
                    break
                yield bytes(data)
            _raise_results(pgconn, pgconn.get_result())
        except DatabaseError:
            raise
        except BaseException:
            connection.close()
            raise


def _raise_results(pgconn, result) -> None:
    """Read the statement's remaining results; raise the first error as Django's."""
    from psycopg import pq

    message = None
    while result is not None:
        if result.status == pq.ExecStatus.FATAL_ERROR and message is None:
            message = (result.error_message or b"COPY failed").decode(errors="replace").strip()
        result = pgconn.get_result()
    if message is not None:
        raise OperationalError(message)
