"""The log list's remembered view settings: which columns show and how many rows a page has.

Kept in two cookies the page's script writes (static/js/logs_list.js), not in a user
preference: they are a per-browser layout choice (a phone and a desktop want different
columns), the server reads them without a query, and the rows are rendered with the right
columns from the first byte (no flash of hidden columns).
"""

from dataclasses import dataclass

COLUMNS_COOKIE = "meterlog_log_columns"
PAGE_SIZE_COOKIE = "meterlog_log_page_size"
PAGE_SIZES = (50, 100, 200)
DEFAULT_PAGE_SIZE = PAGE_SIZES[0]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    shown_by_default: bool = True
    numeric: bool = False


# Time and Request ID always show (the row's when and its link), so they are not listed.
COLUMNS = (
    Column("model", "Model"),
    Column("prompt", "Prompt", numeric=True),
    Column("completion", "Completion", numeric=True),
    Column("total", "Total", numeric=True),
    Column("cost", "Cost", numeric=True),
    Column("latency", "Latency", numeric=True),
    Column("status", "Status"),
    Column("api_key", "API key"),
    Column("ip", "IP", shown_by_default=False),
)
_KEYS = {column.key for column in COLUMNS}


def shown_columns(raw: str | None) -> frozenset[str]:
    """The column keys to show from the cookie ("model,cost,..."); unknown keys are dropped,
    and no cookie (or nothing valid in it) means the defaults."""
    if raw:
        chosen = frozenset(key for key in raw.split(",") if key in _KEYS)
        if chosen or raw.strip() == "-":  # "-": the user hid every optional column
            return chosen
    return frozenset(column.key for column in COLUMNS if column.shown_by_default)


def page_size(raw: str | None) -> int:
    try:
        value = int(raw or "")
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return value if value in PAGE_SIZES else DEFAULT_PAGE_SIZE
