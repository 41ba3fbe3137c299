"""Cost over time split by model or by API key, for the cost tab's stacked bars.

One analytics.usage read per split (buckets × that column). The most expensive TOP_STACKS
names of the whole range get a column each and the rest one "other" column, so a bucket's
columns add up to that bucket's cost in "Cost by day"."""

import re
from collections import defaultdict
from decimal import Decimal

from analytics.report_tables import Column, Table
from analytics.usage import Bucket

TOP_STACKS = 6
OTHER = "other"
SAFE_KEY = re.compile(r"[\w.:/-]{1,100}")


def _name(value) -> str:
    return value if value not in (None, "") else "(none)"


def _key(label: str, index: int) -> str:
    # The CSV header is the column key: a plain name is kept, anything a spreadsheet could read
    # as a formula (or that clashes with our own columns) becomes its position.
    if SAFE_KEY.fullmatch(label) and label[0] not in "=+-@" and label not in ("start", OTHER):
        return label
    return f"s{index}"


def cost_stack_table(buckets: list[Bucket], *, name: str, title: str, time: Column, zone) -> Table:
    """`buckets`: usage() with a bucket and group_by=(one column,)."""
    whole: dict[str, Decimal] = defaultdict(Decimal)
    for bucket in buckets:
        for key, t in bucket.groups.items():
            whole[_name(key[0])] += t.cost
    # A name with no cost (unpriced only) adds nothing to a stack: no empty legend entry.
    ranked = sorted((n for n in whole if whole[n]), key=lambda n: (-whole[n], n))
    # One name left over is shown itself: an 'other (1)' column would hide its name for nothing.
    shown = ranked if len(ranked) <= TOP_STACKS + 1 else ranked[:TOP_STACKS]
    rest = len(ranked) - len(shown)
    columns = [time] + [Column(_key(label, i), label, "usd") for i, label in enumerate(shown)]
    if rest:
        columns.append(Column(OTHER, f"other ({rest})", "usd"))
    table = Table(name, title, columns)
    at = {label: i for i, label in enumerate(shown)}
    for bucket in buckets:
        row: list = [Decimal(0)] * (len(columns) - 1)
        for key, t in bucket.groups.items():
            index = at.get(_name(key[0]), len(shown))
            if index < len(row):  # a name left out above has no cost to add
                row[index] += t.cost
        table.rows.append([bucket.start.astimezone(zone), *row])
    return table
