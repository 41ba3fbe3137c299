"""Whether a "vs previous period" percentage means anything, and the words when it does not.

An account whose data starts inside the previous period (or that had no traffic then) would
otherwise read "+131142.7% vs previous period": a spike that is only missing data. The
percentage is kept only when the previous period had traffic and the account's data covers
most of it.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from analytics.models import UsageQuarter
from console.models import Account
from logs import gate

# Below this share of the previous period covered by the account's data, a change is not shown.
MIN_COVERAGE = 0.9


def data_start(*, account: Account) -> datetime | None:
    """The start of the account's first 15-minute slot with a request (the quarter rollups
    outlive raw rows after a retention purge, so they say when the data starts)."""
    return gate.rollup_rows(UsageQuarter, account).order_by("start").values_list("start", flat=True).first()


@dataclass(frozen=True)
class Coverage:
    """How much of [start, end) the account's data covers."""

    start: datetime
    end: datetime
    since: datetime | None  # the data's start when it falls inside the period

    @property
    def fraction(self) -> float:
        if self.since is None:
            return 1.0
        length = (self.end - self.start).total_seconds()
        return max(0.0, (self.end - self.since).total_seconds() / length) if length > 0 else 0.0

    @property
    def partial(self) -> bool:
        return self.fraction < MIN_COVERAGE


def coverage(*, first: datetime | None, start: datetime, end: datetime) -> Coverage:
    if first is None or first <= start:
        return Coverage(start, end, None)
    return Coverage(start, end, min(first, end))


def change_or_reason(
    current, previous, *, previous_requests: int, cover: Coverage, zone: ZoneInfo
) -> tuple[float | None, str]:
    """(relative change, "") when it is meaningful, else (None, the reason in words)."""
    if not previous_requests:
        return None, "no data in the previous period"
    if cover.partial:
        since = cover.since.astimezone(zone).date().isoformat()
        return None, f"previous period only partly covered (since {since})"
    if not previous:
        return None, "none in the previous period"
    return float((Decimal(current) - Decimal(previous)) / Decimal(previous)), ""


def change_text(current, previous, *, previous_requests: int, cover: Coverage, zone: ZoneInfo, shown: str = "") -> str:
    """ "+12.0% vs previous period ($0.03)" or the reason there is no percentage."""
    change, reason = change_or_reason(current, previous, previous_requests=previous_requests, cover=cover, zone=zone)
    if change is None:
        return reason
    return f"{change * 100:+.1f}% vs previous period" + (f" ({shown})" if shown else "")
