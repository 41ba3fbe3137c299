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
"""

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet

from logs.export_format import EXPORT_FIELDS

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
