"""The usage query and its answers (UsageQuery, Totals, Bucket), and the constants the usage modules share."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from analytics.measures import MEASURES, empty_measures, merge, named
from analytics.models import (
    DIMENSIONS,
    SLICE_COLUMNS,
    UsageDay,
    UsageHour,
    UsageQuarter,
    UsageSlice,
    UsageSliceDay,
    UsageUtcDay,
)
from analytics.timekeys import MICROSECOND
from console.models import Account
from logs import gate

BUCKETS = ("hour", "day", "week", "month")


GROUPS = DIMENSIONS


_ROLLUP_OF = {
    "quarter": UsageQuarter,
    "hour": UsageHour,
    "day": UsageDay,
    "utcday": UsageUtcDay,
    "slice": UsageSlice,
    "slice_day": UsageSliceDay,
}


_SLICE_DIMENSION_OF = {column: int(dimension) for dimension, column in SLICE_COLUMNS.items()}


# The query's filter attributes -> the rollup column each one matches. The log list's
# FilterSet, the usage API and the analytics page name their parameters after the columns.
FILTER_COLUMNS = {"models": "model", "api_keys": "api_key", "statuses": "status", "error_codes": "error_code"}
# A filter parameter (?model=) -> the query attribute it sets (models).
FILTER_PARAMETERS = {column: attribute for attribute, column in FILTER_COLUMNS.items()}


# A year of quarter rows grouped by another zone's days: the planner guessed 16,000 groups
# for 365 and, with the default 4 MB, sorted 35,000 rows on disk instead of hashing them.
_WORK_MEM = "32MB"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(moment: datetime) -> int:
    """Microseconds since the epoch: lists of bounds go to PostgreSQL as bigint arrays (700
    datetimes took longer to send than to read)."""
    return (moment - _EPOCH) // MICROSECOND


def _from_epoch_us_sql(column: str) -> str:
    return f"TIMESTAMPTZ 'epoch' + {column} * INTERVAL '1 microsecond'"


class UsageError(ValueError):
    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(slots=True)
class Totals:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced: int = 0
    latency_count: int = 0
    latency_sum: int = 0
    latency_max: int | None = None
    max_total_tokens: int = 0
    max_cost: Decimal | None = None

    @classmethod
    def from_values(cls, values: list) -> "Totals":
        return cls(**named(values))

    def values(self) -> list:
        return [getattr(self, name) for name in MEASURES]

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def avg_latency_ms(self) -> float | None:
        return self.latency_sum / self.latency_count if self.latency_count else None

    @property
    def cost_per_1k_requests(self) -> Decimal | None:
        priced = self.requests - self.unpriced
        return self.cost * 1000 / priced if priced else None


def sum_totals(items: Iterable[Totals]) -> Totals:
    values = empty_measures()
    for item in items:
        merge(values, item.values())
    return Totals.from_values(values)


@dataclass
class Bucket:
    start: datetime
    end: datetime
    groups: dict[tuple, Totals] = field(default_factory=dict)

    @property
    def total(self) -> Totals:
        return sum_totals(self.groups.values())


@dataclass(frozen=True)
class UsageFilters:
    """The filter attributes of a UsageQuery (`UsageQuery(..., **filters.query_kwargs())`)."""

    models: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()

    @classmethod
    def from_cleaned(cls, cleaned: Mapping) -> "UsageFilters":
        """From validated values by parameter name ({"model": [...], ...}: a FilterSet's or
        form's cleaned_data); a parameter left out filters nothing, a repeated value counts once."""
        return cls(
            **{
                attribute: tuple(dict.fromkeys(cleaned.get(name) or ()))
                for name, attribute in FILTER_PARAMETERS.items()
            }
        )

    def query_kwargs(self) -> dict[str, tuple[str, ...]]:
        return {attribute: getattr(self, attribute) for attribute in FILTER_COLUMNS}


@dataclass(frozen=True)
class UsageQuery:
    account: Account | gate.AllAccounts  # gate.all_accounts() for the operator's view
    start: datetime
    end: datetime
    zone: ZoneInfo
    bucket: str | None = None
    group_by: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()
    # The caller reads only the additive measures (requests, tokens, cost, ...): by another
    # zone's days the figures may then come from the daily rows, and each bucket's maxima
    # (max_total_tokens, max_cost, latency_max) are left None (see _shifted_days).
    sums_only: bool = False

    def __post_init__(self):
        if self.account is None:
            raise UsageError("account", "a usage query needs an account, or all_accounts() for the operator")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise UsageError("start", "start and end need a time zone")
        if self.end <= self.start:
            raise UsageError("end", "end must be after start")
        if self.bucket is not None and self.bucket not in BUCKETS:
            raise UsageError("bucket", f"unknown bucket {self.bucket!r}; use one of {', '.join(BUCKETS)}")
        allowed = ("account",) if self.every_account else GROUPS
        for name in self.group_by:
            if name not in allowed:
                raise UsageError("group_by", f"unknown group {name!r}; use any of {', '.join(allowed)}")
        if len(set(self.group_by)) != len(self.group_by):
            raise UsageError("group_by", "a group is named twice")
        if self.every_account and self.has_filters:
            raise UsageError("account", "the all-accounts view takes no model, key, status or error filter")

    @property
    def every_account(self) -> bool:
        return isinstance(self.account, gate.AllAccounts)

    @property
    def has_filters(self) -> bool:
        return bool(self.models or self.api_keys or self.statuses or self.error_codes)

    @property
    def needs_dimensions(self) -> bool:
        return self.has_filters or any(name in GROUPS for name in self.group_by)
