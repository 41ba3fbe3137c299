"""PostgreSQL-side formatting of export chunks (logs.exports.chunks), byte for byte `log_record`'s values.

A chunk's queryset (keyset-bounded, ordered, limited; possibly a UNION ALL of branches) is
compiled and wrapped in a SELECT that formats the timestamp and the cost in SQL, and its rows
skip Django's per-value converters (a datetime, a Decimal and three json.loads per row were
half of the export's time): to_char's US is the six microsecond digits; trim_scale drops
trailing zeros and numeric text never has an exponent (format_cost's rules). JSON columns
arrive as the jsonb text that JSONField would json.loads, so logs.exports.encoders decodes
that same text; inet arrives as its output text, as through the ORM.

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
every row is a memo hit, and a miss goes through a memo per JSON column. Each chunk is its
own statement in its own transaction (statement timeout, no server-side cursor: fine behind
a transaction-mode pooler), read whole before any of it is sent (a slow client never holds
a statement open). For a download, the next chunk's COPY is sent while the WSGI server
sends the current chunk (`overlap`): PostgreSQL and the web process then work at the same
time instead of taking turns.
"""

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import DatabaseError, OperationalError, connection
from django.db.models import QuerySet

from logs.exports.format import EXPORT_FIELDS, FORMULA_PREFIXES, FORMULA_TEXT_FIELDS, JSON_FIELDS

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


def fetch_values(queryset: QuerySet, *, with_flag: bool = False) -> list[tuple]:
    """Rows: the COLUMNS values (raw timestamp and id, cost as text), then the timestamp text
    (and, `with_flag`, the row's `encrypted` flag: the queryset must select it)."""
    compiled = _compiled(queryset)
    if compiled is None:
        return []
    sql, params = compiled
    select = f'{_VALUES_SELECT}, t."encrypted"' if with_flag else _VALUES_SELECT
    wrapped = f'SELECT {select} FROM ({sql}) t ORDER BY t."timestamp" DESC, t."id" DESC'
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


if not set(FORMULA_TEXT_FIELDS) <= set(_TEXT):  # csv_safe's CASE below keeps NULLIF's rule
    raise RuntimeError("the formula-guarded columns must be text export columns")
# csv_safe: the first character tested as encoders._safe_csv_row does (left() of "" is "",
# of NULL is NULL: neither is prefixed). E'' literals spell the tab and carriage return.
_FORMULA_FIRST = ", ".join("E'" + prefix.encode("unicode_escape").decode() + "'" for prefix in FORMULA_PREFIXES)


def _lead_sql(name: str, csv_safe: bool = False) -> str:
    if name == "timestamp":
        return TIMESTAMP_TEXT
    if csv_safe and name in FORMULA_TEXT_FIELDS:
        column = f't."{name}"'
        quote = "'" * 4  # the SQL literal of one '
        return (
            f"CASE WHEN left({column}, 1) IN ({_FORMULA_FIRST}) THEN {quote} || {column} ELSE NULLIF({column}, '') END"
        )
    if name in _TEXT:
        return f"NULLIF(t.\"{name}\", '')"
    return _value_sql(name)


_JSON_TAIL_SQL = "E'\\x1f' || " + " || E'\\x1e' || ".join(f"coalesce(t.\"{name}\"::text, '')" for name in JSON_FIELDS)
_COPY_SELECT = ", ".join(['t."id"', *map(_lead_sql, _LEAD), _JSON_TAIL_SQL])
_SAFE_COPY_SELECT = ", ".join(['t."id"', *(_lead_sql(name, csv_safe=True) for name in _LEAD), _JSON_TAIL_SQL])
_SENTINEL = b"\x1f"
_QUOTE = ord('"')
# Distinct JSON tails remembered per export before the memo starts over (bounded memory:
# 20,000 held ~10 MB). A 1 M-row export of the bench's largest account has ~16,000
# distinct tails but only 30 / 130 / 13 distinct details / params / tags, so a miss is
# made cheap by a memo per JSON column (no json.loads / dumps on a miss either).
MEMO_SIZE = 4_000
# The WSGI server gets a chunk's CSV in parts of this many rows (~500 KB at ~260 bytes a
# row): a chunk is never held twice (as rows and then joined whole), and writes stay large.
PART_ROWS = 2_000


class _JsonTails(dict):
    """The row's last field as PostgreSQL wrote it, from the character before its \x1f (a
    quote when PostgreSQL quoted it, else the comma before it) to the end -> the bytes that
    replace it: the three JSON cells as logs.exports writes them (json.loads then compact
    dumps; SQL NULL and JSON null give "" for error_details, "{}" for the others) and \r\n."""

    def __init__(self):
        super().__init__()
        self.cells = tuple({} for _ in JSON_FIELDS)  # per column: jsonb text -> its CSV cell
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer)

    def __missing__(self, tail: bytes) -> bytes:
        if len(self) >= MEMO_SIZE:
            self.clear()
        quoted = tail[0] == _QUOTE
        text = tail[2:-2] if quoted else tail[2:-1]  # drop '"\x1f' / ',\x1f' and '"\n' / '\n'
        if quoted:
            text = text.replace(b'""', b'"')
        cells = []
        for memo, value, empty in zip(self.cells, text.split(b"\x1e"), ("", "{}", "{}"), strict=True):
            cell = memo.get(value)
            if cell is None:
                if len(memo) >= MEMO_SIZE:
                    memo.clear()
                cell = memo[value] = self._csv_cell(_json_cell(value.decode(), empty))
            cells.append(cell)
        # Quoted: the comma before the field stays in the row; unquoted: it is in `tail`.
        cell_bytes = b",".join(cells) + b"\r\n"
        self[tail] = cell_bytes if quoted else b"," + cell_bytes
        return self[tail]

    def _csv_cell(self, value: str) -> bytes:
        """`value` as the csv module writes it inside a row (quoted or not). Written beside
        an empty cell: a row of one empty cell alone would be written as "" """
        buffer = self.buffer
        buffer.seek(0)
        buffer.truncate()
        self.writer.writerow([value, ""])
        return buffer.getvalue()[: -len(",\r\n")].encode()


def _json_cell(text: str, empty: str) -> str:
    value = json.loads(text) if text else None
    return empty if value is None else compact_json(value)


def copy_csv_chunks(
    queryset: QuerySet, *, chunk_rows: int, timeout, overlap: bool = False, csv_safe: bool = False
) -> Iterator[tuple[int, bytes]]:
    """(rows, CSV bytes without header) parts of `queryset` (the filtered, unordered rows),
    newest first, byte for byte what logs.exports writes through the csv module. Each keyset
    chunk is read whole (its statement ends whatever the client's speed) and then given out
    in parts of PART_ROWS rows; a chunk's row count comes with its last part, others say 0.
    `timeout` is selectors.statement_timeout (passed in: selectors is above this module).
    `csv_safe`: text cells starting with FORMULA_PREFIXES get a leading ', in the SELECT.

    `overlap`: after the first part of a chunk, the next chunk's COPY is sent before the rest
    is given out, so PostgreSQL reads and formats it while the WSGI server sends (its rows
    wait in the socket buffers) instead of both taking turns. Only for a consumer that does
    nothing else with the connection between parts (the HTTP download; not a job writing
    its progress). The first part of each chunk is given out with no statement running and
    no transaction open, so the caller may use the connection after the first part (the
    download records itself then). Should an overlapped COPY run into the statement timeout
    (a client reading slowly while it waited), it is read again alone, and the rest of the
    export goes without overlap."""
    from logs.pagination import after_cursor, encode_cursor
    from logs.selectors import QueryTimeout

    tails = _JsonTails()
    cursor = None
    ready: list[tuple[int, bytes]] = []  # the chunk read and not yet given out
    while True:
        query = _chunk_copy_query(after_cursor(queryset, cursor), chunk_rows, csv_safe=csv_safe)
        if query is None:  # e.g. an account without rows: no retention class to read
            yield from ready
            return
        if ready and not overlap:
            yield from ready  # before the next chunk is read: one chunk in memory at a time
            ready = []
        elif ready:
            yield ready.pop(0)
        overlapped = bool(ready)
        try:
            with timeout():
                _send_copy(query)
                if overlapped:
                    try:
                        yield from ready
                    except BaseException:
                        connection.close()  # the COPY is in flight: the connection cannot be reused
                        raise
                    ready = []
                rows, parts, last = _read_copy(tails)
        except QueryTimeout:
            if not overlapped:
                raise
            overlap = False  # the parts were sent; read the same chunk again, alone
            continue
        ready = parts
        if parts:
            ready[-1] = (rows, parts[-1][1])
        if rows < chunk_rows:
            yield from ready
            return
        values = next(csv.reader(io.StringIO(last.decode(), newline="")))
        cursor = encode_cursor(datetime.fromisoformat(values[1 + EXPORT_FIELDS.index("timestamp")]), int(values[0]))


def _chunk_copy_query(queryset: QuerySet, chunk_rows: int, *, csv_safe: bool = False) -> bytes | None:
    """The COPY statement of one keyset chunk, parameters merged client-side (as psycopg's
    own copy() does)."""
    from psycopg import ClientCursor

    compiled = _compiled(queryset.order_by("-timestamp", "-id").values_list(*COLUMNS)[:chunk_rows])
    if compiled is None:
        return None
    sql, params = compiled
    select = _SAFE_COPY_SELECT if csv_safe else _COPY_SELECT
    copy_sql = (
        f'COPY (SELECT {select} FROM ({sql}) t ORDER BY t."timestamp" DESC, t."id" DESC) TO STDOUT WITH (FORMAT csv)'
    )
    connection.ensure_connection()
    conn = connection.connection
    return ClientCursor(conn).mogrify(copy_sql, params or None).encode(conn.info.encoding)


def _send_copy(query: bytes) -> None:
    """Send the statement without waiting for it (libpq's PQsendQuery)."""
    pgconn = connection.connection.pgconn
    try:
        pgconn.send_query(query)
        while pgconn.flush():
            pass
    except BaseException:
        connection.close()
        raise


def _read_copy(tails: _JsonTails) -> tuple[int, list[tuple[int, bytes]], bytes]:
    """Read the COPY sent by _send_copy: (rows, [(0, part), ...], the last raw row). Each
    row is fixed up as the module docstring says, with no per-row call besides libpq's
    (this loop is most of the web process's time). On a failure part-way the connection is
    closed (it would still be in COPY state); an SQL error comes out as Django's."""
    from psycopg import pq

    conn = connection.connection
    pgconn = conn.pgconn
    parts: list[tuple[int, bytes]] = []
    lines: list[bytes] = []
    append = lines.append
    part_rows = PART_ROWS
    rows = 0
    row = b""
    with conn.lock:
        try:
            result = pgconn.get_result()
            if result is None or result.status != pq.ExecStatus.COPY_OUT:
                _raise_results(pgconn, result)
                raise OperationalError("COPY TO STDOUT did not start")
            get_copy_data = pgconn.get_copy_data
            # One message per row (the protocol's rule for COPY TO).
            while True:
                size, data = get_copy_data(0)
                if size < 0:
                    break
                row = bytes(data)
                start = row.find(b",") + 1
                end = row.rfind(_SENTINEL) - 1
                append(row[start:end] + tails[row[end:]])
                if len(lines) == part_rows:
                    parts.append((0, b"".join(lines)))
                    rows += part_rows
                    lines.clear()
            _raise_results(pgconn, pgconn.get_result())
        except DatabaseError:
            raise
        except BaseException:
            connection.close()
            raise
    if lines:
        parts.append((0, b"".join(lines)))
        rows += len(lines)
    return rows, parts, row


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
