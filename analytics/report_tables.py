"""Tables of numbers behind the analytics charts: one `Table` feeds a chart
(analytics.figures), the table shown beside it and its CSV download."""

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from logs.templatetags.meterlog_format import UNPRICED, csv_usd, exact_usd, format_usd, percent


def priced_cost(totals) -> Decimal | None:
    """The cost of some requests (analytics.usage.Totals), or None when none of them has a
    price: said "unpriced", never drawn or summed as $0."""
    return None if totals.requests and totals.unpriced >= totals.requests else totals.cost


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"  # text | int | usd | percent | hour | day | week | time


@dataclass(frozen=True)
class Cell:
    text: str
    href: str | None = None
    numeric: bool = False
    title: str = ""  # shown on hover: a cost's every digit


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    hrefs: list[str | None] = field(default_factory=list)  # where each row's first cell links
    chart: bool = True  # drawn as a chart with the table folded beside it

    def values(self, key: str) -> list:
        at = [column.key for column in self.columns].index(key)
        return [row[at] for row in self.rows]

    def display_rows(self) -> list[list[Cell]]:
        out = []
        for index, row in enumerate(self.rows):
            href = self.hrefs[index] if index < len(self.hrefs) else None
            cells = []
            for at, (column, value) in enumerate(zip(self.columns, row, strict=True)):
                numeric = column.kind in ("int", "usd", "percent")
                title = exact_usd(value) if column.kind == "usd" and value is not None else ""
                cells.append(Cell(_display(value, column.kind), href if at == 0 else None, numeric, title))
            out.append(cells)
        return out

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([column.key for column in self.columns])
        for row in self.rows:
            writer.writerow([_csv_value(value, column.kind) for column, value in zip(self.columns, row, strict=True)])
        return buffer.getvalue()


def _display(value, kind: str) -> str:
    if kind == "usd":
        return format_usd(value, none=UNPRICED)
    if value is None:
        return "–"
    if kind == "int":
        return f"{value:,}"
    if kind == "percent":
        return percent(value, 1)
    if kind == "hour":
        return value.strftime("%a %Y-%m-%d %H:%M")
    if kind == "day":
        return value.strftime("%a %Y-%m-%d")
    if kind == "week":
        return value.strftime("Week of %Y-%m-%d")
    if kind == "time":
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _csv_value(value, kind: str) -> str:
    if value is None:
        return ""  # an unpriced cost stays blank: a spreadsheet's empty cell, not a 0
    if kind == "usd":
        return csv_usd(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


@dataclass(frozen=True)
class Stat:
    label: str
    value: str
    sub: str = ""
    title: str = ""  # shown on hover: a cost's every digit
