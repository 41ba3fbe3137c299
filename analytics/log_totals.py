"""The log list's totals bar past its cap: exact totals from the rollups (registered with
logs.selectors when Django starts; see logs.selectors.log_totals)."""

from datetime import UTC, datetime

from analytics.usage import FILTER_PARAMETERS, UsageFilters, UsageQuery, totals
from logs import selectors
from logs.filters import RequestLogFilterSet
from logs.gate import request_logs
from logs.ranges import time_bounds
from logs.selectors import LogTotals, statement_timeout

_TIME_FILTERS = ("range", "start", "end")
# An open end: ingest refuses timestamps more than 5 minutes ahead.
_OPEN_END = datetime(2100, 1, 1, tzinfo=UTC)


def rollup_totals(filterset: RequestLogFilterSet) -> LogTotals | None:
    """Exact totals from the rollups, or None when the filters need raw rows.

    The time range is the FilterSet's: `start` inclusive (else a `range` preset back from
    now), `end` exclusive, open ends unbounded. The start is raised to the account's oldest
    stored row, so the bar counts the rows the list can show and not the days whose raw rows
    the retention purge dropped (the rollups keep those)."""
    account = getattr(filterset, "account", None)
    cleaned = filterset.form.cleaned_data
    if account is None:
        return None
    for name, value in cleaned.items():
        if name not in _TIME_FILTERS and name not in FILTER_PARAMETERS and value not in (None, "", []):
            return None
    start, end = time_bounds(cleaned.get("range"), cleaned.get("start"), cleaned.get("end"))
    end = end or _OPEN_END
    with statement_timeout():
        oldest = request_logs(account=account).order_by("timestamp").values_list("timestamp", flat=True).first()
    if oldest is None:
        return None
    start = oldest if start is None else max(start, oldest)
    if end <= start:
        return None
    filters = UsageFilters.from_cleaned(cleaned)
    figures = totals(UsageQuery(account=account, start=start, end=end, zone=account.zone, **filters.query_kwargs()))
    if figures.requests <= selectors.TOTALS_CAP:  # read at call time: tests lower the cap
        # Fewer than the raw rows just counted: rows that did not go through ingest (and
        # have not been rebuilt into the rollups yet). Keep the cap rather than show them.
        return None
    return LogTotals(
        requests=figures.requests,
        capped=False,
        errors=figures.errors,
        prompt_tokens=figures.prompt_tokens,
        completion_tokens=figures.completion_tokens,
        total_tokens=figures.total_tokens,
        cost=figures.cost,
        unpriced=figures.unpriced,
    )
