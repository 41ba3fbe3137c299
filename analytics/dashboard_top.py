"""The dashboard's "top models" and "top API keys" tables: cost and requests over the same
last 30 days as its charts, each from one analytics.usage read grouped by that column."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from analytics.report_tables import priced_cost
from analytics.usage import Totals, UsageQuery, sum_totals, usage
from console.models import Account
from logs import selectors

TOP_ROWS = 5


@dataclass(frozen=True)
class TopRow:
    name: str  # the model or API key ("other (3)" for the rest)
    label: str  # the key's display name, "" for models
    cost: Decimal | None  # None: every request unpriced
    requests: int
    share: float | None  # of the period's cost


def _grouped(account: Account, start: datetime, end: datetime, zone: ZoneInfo, column: str) -> dict[str, Totals]:
    (bucket,) = usage(UsageQuery(account=account, start=start, end=end, zone=zone, group_by=(column,), sums_only=True))
    return {(key[0] if key[0] not in (None, "") else "(none)"): t for key, t in bucket.groups.items()}


def _rows(groups: dict[str, Totals], names: dict[str, str], noun: str) -> list[TopRow]:
    ranked = sorted(groups.items(), key=lambda item: (-item[1].cost, -item[1].requests, item[0]))
    whole = sum_totals(groups.values()).cost

    def row(name: str, label: str, t: Totals) -> TopRow:
        cost = priced_cost(t)
        return TopRow(name, label, cost, t.requests, float(cost / whole) if whole and cost is not None else None)

    rows = [row(name, names.get(name, ""), t) for name, t in ranked[:TOP_ROWS]]
    if len(ranked) > TOP_ROWS:
        rest = ranked[TOP_ROWS:]
        rows.append(row(f"other ({len(rest)} {noun})", "", sum_totals(t for _name, t in rest)))
    return rows


def top_models_and_keys(
    *, account: Account, start: datetime, end: datetime, zone: ZoneInfo
) -> tuple[list[TopRow], list[TopRow]]:
    models = _rows(_grouped(account, start, end, zone, "model"), {}, "models")
    names = dict(selectors.api_keys_for(account=account).values_list("identifier", "display_name"))
    keys = _rows(_grouped(account, start, end, zone, "api_key"), names, "keys")
    return models, keys
