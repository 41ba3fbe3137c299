"""analytics_bench.py's raw-row side: the same aggregates as plain SQL over logs_requestlog
(same account, retention classes, range and filters), the engine's results in the same shape,
and the comparison of both (requests, errors, tokens, unpriced count, cost to the cent)."""

from decimal import Decimal

from bench.analytics_timing import stats
from bench.common import timed

CENT = Decimal("0.01")
# Compared between engine and raw rows, in this order.
COMPARED = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "unpriced")
RAW_MEASURES = (
    "count(*), count(*) FILTER (WHERE status = 'error'), coalesce(sum(prompt_tokens), 0), "
    "coalesce(sum(completion_tokens), 0), coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0), "
    "count(*) FILTER (WHERE cost IS NULL)"
)


# --- raw rows -----------------------------------------------------------------------------------


class RawRunner:
    """Plain SQL over logs_requestlog; identical statements in one scenario run once."""

    def __init__(self, runs: int, budget_s: float, skip: bool):
        self.runs, self.budget_s, self.skip = runs, budget_s, skip
        self.cache: dict = {}

    def run(self, sql: str, params: list) -> tuple[dict | None, list | None, bool]:
        """(timing stats, rows, reused?)"""
        if self.skip:
            return None, None, False
        key = (sql, repr(params))
        if key in self.cache:
            timing, rows = self.cache[key]
            return timing, rows, True
        from django.db import connection

        def once():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

        times, rows = timed(once, self.runs, self.budget_s, min_runs=1)
        timing = stats(times)
        self.cache[key] = (timing, rows)
        return timing, rows, False


def raw_where(account, start, end, models=(), statuses=(), api_keys=()) -> tuple[str, list]:
    """The rows the engine reads: the account's retention classes (as logs.gate.request_logs
    filters them), the range and the filters."""
    from logs.gate import retention_classes

    where, params = ["timestamp >= %s", "timestamp < %s"], [start, end]
    if account is not None and account.pk is not None:  # all_accounts() has no pk: every row
        where[:0] = ["account_id = %s", "retention_days = ANY(%s::smallint[])"]
        params[:0] = [account.pk, retention_classes(account=account) or [0]]
    if models:
        where.append("model = ANY(%s)")
        params.append(list(models))
    if statuses:
        where.append("status = ANY(%s)")
        params.append(list(statuses))
    if api_keys:
        where.append("api_key = ANY(%s)")
        params.append(list(api_keys))
    return " AND ".join(where), params


def raw_usage_sql(q) -> tuple[str, list]:
    where, params = raw_where(q.account, q.start, q.end, q.models, q.statuses, q.api_keys)
    key_params = []
    if q.bucket is None:
        key = "''"
    elif q.bucket == "day":
        key, key_params = "((timestamp AT TIME ZONE %s)::date)::text", [q.zone.key]
    elif q.bucket == "week":
        key, key_params = "(date_trunc('week', timestamp AT TIME ZONE %s)::date)::text", [q.zone.key]
    else:
        raise ValueError(q.bucket)
    groups = ["account_id::text" if g == "account" else g for g in q.group_by]
    select = ", ".join([key, *groups, RAW_MEASURES])
    group_by = ", ".join(str(i + 1) for i in range(1 + len(groups)))
    return f"SELECT {select} FROM logs_requestlog WHERE {where} GROUP BY {group_by}", [*key_params, *params]


def raw_usage_norm(rows, n_groups: int) -> dict:
    out = {}
    for row in rows:
        key = tuple("" if v is None else str(v) for v in row[: 1 + n_groups])
        out[key] = tuple(row[1 + n_groups :])
    return out


def raw_heatmap_sql(q) -> tuple[str, list]:
    where, params = raw_where(q.account, q.start, q.end, q.models, q.statuses, q.api_keys)
    return (
        "SELECT extract(isodow FROM timestamp AT TIME ZONE %s)::int - 1, "
        "extract(hour FROM timestamp AT TIME ZONE %s)::int, count(*) "
        f"FROM logs_requestlog WHERE {where} GROUP BY 1, 2",
        [q.zone.key, q.zone.key, *params],
    )


def raw_peak_sql(q) -> tuple[str, list]:
    where, params = raw_where(q.account, q.start, q.end, q.models, q.statuses, q.api_keys)
    return (
        "SELECT coalesce(max(n), 0), coalesce(max(t), 0) FROM (SELECT count(*) AS n, sum(total_tokens) AS t "
        f"FROM logs_requestlog WHERE {where} GROUP BY date_trunc('minute', timestamp)) AS minutes",
        params,
    )


def raw_top_sql(q, n: int) -> tuple[str, list]:
    where, params = raw_where(q.account, q.start, q.end, q.models, q.statuses, q.api_keys)
    return (
        f"SELECT id, cost FROM logs_requestlog WHERE {where} AND cost IS NOT NULL "
        f"ORDER BY cost DESC, timestamp DESC LIMIT {int(n)}",
        params,
    )


# --- engine results in the same shape -----------------------------------------------------------


def engine_usage_norm(buckets, q) -> tuple[dict, list]:
    out, duplicates = {}, []
    for bucket in buckets:
        label = bucket.start.astimezone(q.zone).date().isoformat() if q.bucket else ""
        for group, t in bucket.groups.items():
            key = (label, *("" if g is None else str(g) for g in group))
            values = tuple(getattr(t, name) for name in COMPARED)
            if key in out:  # e.g. NULL and '' as two groups
                duplicates.append(key)
                values = tuple(a + b for a, b in zip(out[key], values, strict=True))
            out[key] = values
    return out, duplicates


def compare(engine: dict, raw: dict) -> dict:
    """Every key of both, each value equal (Decimals to the cent; exactness noted)."""
    problems, exact = [], True
    for key in sorted(set(engine) | set(raw), key=str):
        e, r = engine.get(key), raw.get(key)
        if e is None or r is None:
            problems.append({"key": key, "engine": e, "raw": r})
            continue
        for a, b in zip(e, r, strict=True):
            if isinstance(a, Decimal) or isinstance(b, Decimal):
                a, b = Decimal(a), Decimal(b)
                if a != b:
                    exact = False
                if a.quantize(CENT) != b.quantize(CENT):
                    problems.append({"key": key, "engine": e, "raw": r})
                    break
            elif a != b:
                problems.append({"key": key, "engine": e, "raw": r})
                break
    return {
        "ok": not problems,
        "keys": len(set(engine) | set(raw)),
        "exact_cost": exact,
        "problems": [{k: str(v) for k, v in p.items()} for p in problems[:10]],
        "n_problems": len(problems),
    }
