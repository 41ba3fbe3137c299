"""Figures of many accounts at once, from the rollups, for the alert evaluation (and any
other pass over every account): one SQL query per source and projection for all the
accounts asked, never a query per account or per rule. Works on SQLite and PostgreSQL.

- `rollup_states`: each account's zone of daily rows (RollupState.day_timezone) and the
  times its slices are complete from.
- `daily_totals`: requests and cost per local day per account from UsageDay, in one of the
  projections TOTAL (no dimension), MODEL, KEY or FULL (model and key). The days are those
  of RollupState.day_timezone, usually the account's zone. While an account changes zone,
  the rows keep the old zone's days until `rebuild_rollups` has moved them (the zone
  switches with them, in one transaction), and days older than the raw rows keep the old
  zone's boundaries for good: a baseline of daily costs may then mix days cut at two
  different midnights.
- `monthly_totals`: the same per local month (the projections' monthly rows, kept at
  ingest): a month to date is one row per group.
- `token_percentiles`: the p99 (or another percentile) of total tokens per request per
  account and model over a range, from raw rows in one set-based query: the rollups keep
  only each slot's largest request. For a daily baseline, not for every pass.
- `window_slots`: requests, errors, the largest request's total tokens and cost per
  15-minute UTC slot from UsageQuarter (no dimension) or UsageSlice (model or API key).
  A window is counted in whole slots (`window_start`): a window of 60 minutes is the slot
  in progress and the three before it, so it covers between 45 and 60 minutes of traffic
  (exact slots, no raw rows; rollups are written with each ingest batch, so the slot in
  progress holds every request ingested so far).

Nothing here knows about alert rules (analytics does not import alerts).
"""

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection

from analytics.measures import to_decimal
from analytics.models import MONTHLY, Projection, RollupState, SliceDimension, UsageDay, UsageQuarter, UsageSlice
from analytics.sql import adapt, as_utc
from analytics.timekeys import QUARTER, floor_quarter, local_midnight
from console.models import Account
from logs import gate
from logs.selectors import statement_timeout

PROJECTIONS = (Projection.TOTAL, Projection.MODEL, Projection.KEY, Projection.FULL)
# The slice dimension of each scope column a window can be read by.
WINDOW_DIMENSIONS = {"model": SliceDimension.MODEL, "api_key": SliceDimension.API_KEY}


@dataclass(frozen=True)
class AccountRollups:
    zone: ZoneInfo  # the zone of the account's daily rows
    slices_since: datetime | None  # model (and status) slices complete from (None: always)
    key_slices_since: datetime | None  # API-key slices complete from

    def today(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def complete_since(self, column: str | None) -> datetime | None:
        """The time the slot rows of `column` (None: the quarters) are complete from."""
        return {None: None, "model": self.slices_since, "api_key": self.key_slices_since}[column]


@dataclass(frozen=True)
class DayTotal:
    requests: int
    cost: Decimal


@dataclass(frozen=True)
class SlotTotal:
    requests: int
    errors: int
    max_total_tokens: int
    cost: Decimal


@dataclass(frozen=True)
class WindowTotal:
    requests: int = 0
    errors: int = 0
    max_total_tokens: int | None = None  # None: no request in the window
    cost: Decimal = Decimal(0)


def window_start(now: datetime, minutes: int) -> datetime:
    """The start of a window of `minutes` counted in whole 15-minute slots, the newest being
    the slot in progress: ceil(minutes / 15) slots."""
    slots = max(1, math.ceil(minutes / 15))
    return floor_quarter(now) - (slots - 1) * QUARTER


def rollup_states(accounts: Iterable[Account]) -> dict[int, AccountRollups]:
    """Each account's zone of daily rows and slice completeness, in one query. An account
    without rollups yet (no ingest) gets its own zone."""
    accounts = list(accounts)
    rows = gate.rollup_rows(RollupState, gate.some_accounts(accounts)).values_list(
        "account_id", "day_timezone", "slices_since", "key_slices_since"
    )
    found = {account_id: (zone, since, key_since) for account_id, zone, since, key_since in rows}
    states = {}
    for account in accounts:
        zone, since, key_since = found.get(account.pk, (account.timezone, None, None))
        states[account.pk] = AccountRollups(ZoneInfo(zone), since, key_since)
    return states


def _in_sql(column: str, values: Collection[str] | None) -> tuple[str, list]:
    if values is None:
        return "", []
    values = sorted(set(values))
    if not values:
        return " AND 1 = 0", []
    return f" AND {column} IN ({', '.join(['%s'] * len(values))})", values


def _as_date(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _days(
    accounts: Iterable[Account],
    projection: int,
    day_sql: str,
    day_params: list,
    models: Collection[str] | None,
    api_keys: Collection[str] | None,
) -> dict[tuple[int, str, str], dict[date, DayTotal]]:
    table, where, params = gate.rollup_sql(UsageDay, gate.some_accounts(accounts))
    model_sql, model_params = _in_sql("model", models)
    key_sql, key_params = _in_sql("api_key", api_keys)
    sql = (
        f"SELECT account_id, day, model, api_key, CAST(sum(requests) AS BIGINT), sum(cost) FROM {table} "
        f"WHERE {where} AND projection = %s AND {day_sql}{model_sql}{key_sql} "
        "GROUP BY account_id, day, model, api_key"
    )
    found: dict[tuple[int, str, str], dict[date, DayTotal]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, projection, *day_params, *model_params, *key_params])
        for account_id, day, model, api_key, requests, cost in cursor.fetchall():
            found.setdefault((account_id, model, api_key), {})[_as_date(day)] = DayTotal(
                int(requests or 0), to_decimal(cost)
            )
    return found


def daily_totals(
    accounts: Iterable[Account],
    *,
    first_day: date,
    last_day: date,
    projection: int = Projection.TOTAL,
    models: Collection[str] | None = None,
    api_keys: Collection[str] | None = None,
) -> dict[tuple[int, str, str], dict[date, DayTotal]]:
    """{(account id, model, API key): {local day: DayTotal}} for the days in [first_day,
    last_day] with traffic, in one query. `model` / `api_key` are "" where the projection
    does not keep them; `models` / `api_keys` narrow the read to those values."""
    if projection not in PROJECTIONS:
        raise ValueError(f"daily totals read the projections {PROJECTIONS}, not {projection}")
    return _days(accounts, projection, "day >= %s AND day <= %s", [first_day, last_day], models, api_keys)


def monthly_totals(
    accounts: Iterable[Account],
    *,
    months: Collection[date],
    projection: int = Projection.TOTAL,
    models: Collection[str] | None = None,
    api_keys: Collection[str] | None = None,
) -> dict[tuple[int, str, str], dict[date, DayTotal]]:
    """Like `daily_totals`, per local month (keyed by its first day) for the `months`
    asked: a month to date is the month's row."""
    if projection not in PROJECTIONS:
        raise ValueError(f"monthly totals read the projections {PROJECTIONS}, not {projection}")
    months = sorted({month.replace(day=1) for month in months})
    if not months:
        return {}
    day_sql = f"day IN ({', '.join(['%s'] * len(months))})"
    return _days(accounts, projection + MONTHLY, day_sql, months, models, api_keys)


def window_slots(
    accounts: Iterable[Account],
    *,
    since: datetime,
    column: str | None = None,
    values: Collection[str] | None = None,
) -> dict[tuple[int, str], list[tuple[datetime, SlotTotal]]]:
    """{(account id, value): [(UTC slot start, SlotTotal)]} of the slots starting at or
    after `since` (rounded down to a slot), in one query: from UsageQuarter with `column`
    None (value ""), else from the slices of that column ("model" or "api_key"), narrowed
    to `values` when given. Each caller sums its own window with `window_total`."""
    since = floor_quarter(since)
    scope = gate.some_accounts(accounts)
    if column is None:
        table, where, params = gate.rollup_sql(UsageQuarter, scope)
        select_value, dimension_sql, dimension_params = "''", "", []
        value_sql, value_params = "", []
    else:
        table, where, params = gate.rollup_sql(UsageSlice, scope)
        select_value, dimension_sql, dimension_params = "value", " AND dimension = %s", [WINDOW_DIMENSIONS[column]]
        value_sql, value_params = _in_sql("value", values)
    sql = (
        f"SELECT account_id, {select_value}, start, requests, errors, max_total_tokens, cost FROM {table} "
        f"WHERE {where}{dimension_sql} AND start >= %s{value_sql}"
    )
    found: dict[tuple[int, str], list[tuple[datetime, SlotTotal]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *dimension_params, adapt(since), *value_params])
        for account_id, value, start, requests, errors, max_tokens, cost in cursor.fetchall():
            found.setdefault((account_id, value), []).append(
                (as_utc(start), SlotTotal(int(requests), int(errors), int(max_tokens or 0), to_decimal(cost)))
            )
    return found


def window_total(slots: Iterable[tuple[datetime, SlotTotal]], since: datetime) -> WindowTotal:
    """The slots of `window_slots` that start at or after `since`, added up."""
    requests = errors = 0
    max_tokens = None
    cost = Decimal(0)
    for start, slot in slots:
        if start < since or not slot.requests:
            continue
        requests += slot.requests
        errors += slot.errors
        cost += slot.cost
        max_tokens = slot.max_total_tokens if max_tokens is None else max(max_tokens, slot.max_total_tokens)
    return WindowTotal(requests, errors, max_tokens, cost)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC start and end of a local day."""
    return local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)


def token_percentiles(
    accounts: Iterable[Account], *, start: datetime, end: datetime, fraction: float = 0.99
) -> dict[tuple[int, str], tuple[int, int]]:
    """{(account id, model): (nearest-rank percentile of total tokens per request, requests)}
    over the raw rows of [start, end), in one set-based query for all the accounts.

    The rollups cannot answer it (they keep each slot's largest request, not the spread), so
    this reads raw rows: callers run it once a day per baseline, not per pass (see
    alerts.baselines), under the log statement timeout (QueryTimeout)."""
    table, where, params = gate.request_log_sql(gate.some_accounts(accounts))
    window = [*params, adapt(start), adapt(end)]
    if connection.vendor == "postgresql":
        sql = (
            "SELECT account_id, model, percentile_disc(%s) WITHIN GROUP (ORDER BY total_tokens), count(*) "
            f"FROM {table} WHERE {where} AND timestamp >= %s AND timestamp < %s GROUP BY account_id, model"
        )
        values = [fraction, *window]
    else:
        # No percentile aggregate in SQLite: the row at rank ceil(fraction * n) of each group.
        sql = (
            "SELECT account_id, model, total_tokens, n FROM ("
            "SELECT account_id, model, total_tokens, "
            "row_number() OVER (PARTITION BY account_id, model ORDER BY total_tokens) AS rank, "
            "count(*) OVER (PARTITION BY account_id, model) AS n "
            f"FROM {table} WHERE {where} AND timestamp >= %s AND timestamp < %s"
            ") WHERE rank = MAX(1, CAST(n * %s AS INTEGER) + (n * %s > CAST(n * %s AS INTEGER)))"
        )
        values = [*window, fraction, fraction, fraction]
    found = {}
    with statement_timeout(parallel=False), connection.cursor() as cursor:
        cursor.execute(sql, values)
        for account_id, model, tokens, requests in cursor.fetchall():
            found[(account_id, model)] = (int(tokens or 0), int(requests))
    return found
