"""The usage API's parameters and answer (GET /api/v1/usage; the view is analytics/api.py).

`parse_usage_params` turns the query string into an `analytics.usage.UsageQuery`, or into
{parameter: [messages]} naming every bad parameter at once. `usage_page` shapes the engine's
buckets like OpenAI's usage API. The DRF serializers below only document the schema.

Costs are written as the log API writes a record's (logs.api.serializers.format_cost): exact
to 12 places, the scale costs are stored and summed at, without trailing zeros ("4.12731"),
so a client that adds up records gets the usage API's figure, character for character. A
group whose requests are all unpriced has `"cost": null`, never "0": zero would claim they
were free. Every result says `unpriced_requests`, 0 included.

Bucket edges (and the page's `start` / `end`) keep the requested zone's offset
(2026-11-20T00:00:00+05:30), unlike the record timestamps of the log API (UTC, Z): a day
bucket is a local day, and its edges say which one without the client knowing the zone's rules.
"""

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from rest_framework import serializers

from analytics.usage import (
    BUCKETS,
    FILTER_PARAMETERS,
    GROUPS,
    Bucket,
    Totals,
    UsageError,
    UsageFilters,
    UsageQuery,
)
from console.models import Account, validate_timezone_name
from console.params import moment_problem, text_errors
from logs.api.params import END_BEFORE_START, range_message
from logs.api.serializers import format_cost as format_record_cost
from logs.models import Status
from logs.ranges import LOG_RANGES, time_bounds

DEFAULT_BUCKET = "day"
DEFAULT_DAYS = 7
# The longest range each bucket answers: at most ~750 hour buckets, 400 day buckets (a year
# with room to compare), 5 years of weeks (~260) or months (60).
RANGE_LIMITS = {
    "hour": timedelta(days=31),
    "day": timedelta(days=400),
    "week": timedelta(days=1830),
    "month": timedelta(days=1830),
}
# Bounds that keep calendar arithmetic in range (ingest refuses timestamps before 2000).
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_VALUES = 50
# Filters of the log list that aggregates cannot answer: refused rather than silently ignored.
LOG_ONLY_FILTERS = ("ip", "q", "request_id", "tag", "min_tokens", "max_tokens", "min_cost", "max_cost", "unpriced")
# Every parameter read below (for the check of what PostgreSQL can take).
PARAMETERS = ("timezone", "bucket", "group_by", "start", "end", "range", *FILTER_PARAMETERS, *LOG_ONLY_FILTERS)
# Empty group values are null in the answer, as in the log API.
_NULL_WHEN_EMPTY = ("api_key", "error_code")
COST_PLACES = 12
_COST_QUANTUM = Decimal(1).scaleb(-COST_PLACES)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPACED_OFFSET = re.compile(r"(?<=\d) (\d{2}:?\d{2})$")
_EPOCH = re.compile(r"^\d+(\.\d+)?$")
_MOMENT_HELP = "Enter an RFC 3339 date-time (2026-11-20T00:00:00+05:30), a date (2026-11-20) or epoch seconds."


def _values(params, name: str) -> list[str]:
    """A repeated and/or comma-separated parameter: ?model=a&model=b or ?model=a,b."""
    return [part.strip() for raw in params.getlist(name) for part in raw.split(",") if part.strip()]


def _moment(raw: str, zone: ZoneInfo) -> datetime:
    """RFC 3339, a plain date (local midnight in `zone`) or epoch seconds; a date-time
    without an offset is read in `zone`."""
    text = raw.strip()
    try:
        if _DATE.match(text):
            moment = datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone)
        elif _EPOCH.match(text):
            moment = datetime.fromtimestamp(float(text), tz=UTC)
        else:
            # An unencoded "+05:30" arrives as " 05:30": the query string decodes "+" as a space.
            text = text.upper()
            text = _SPACED_OFFSET.sub(r"+\1", text) if "T" in text else text.replace(" ", "T", 1)
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(_MOMENT_HELP) from exc
    problem = moment_problem(moment)
    if problem:
        raise ValueError(problem)
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"Must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}.")
    return moment


def _days(delta: timedelta) -> str:
    return f"{delta / timedelta(days=1):,.1f}".rstrip("0").rstrip(".")


def parse_usage_params(params, *, account: Account, now: datetime) -> tuple[UsageQuery | None, dict[str, list[str]]]:
    """The usage query of `params` for `account`, or the errors by parameter name."""
    # A value PostgreSQL cannot take (NUL, ...) is reported, then read as absent.
    errors: dict[str, list[str]] = text_errors(params, PARAMETERS)
    if errors:
        params = params.copy()
        for name in errors:
            params.pop(name)

    def fail(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    zone_name = (params.get("timezone") or "").strip() or account.timezone
    try:
        validate_timezone_name(zone_name)
    except ValidationError:
        fail("timezone", f"Unknown time zone {zone_name!r}; use an IANA name such as Asia/Kolkata or UTC.")
        zone_name = account.timezone
    zone = ZoneInfo(zone_name)

    bucket = (params.get("bucket") or "").strip() or DEFAULT_BUCKET
    if bucket not in BUCKETS:
        fail("bucket", f"Unknown bucket {bucket!r}; use one of: {', '.join(BUCKETS)}.")

    group_by = _values(params, "group_by")
    for name in group_by:
        if name not in GROUPS:
            fail("group_by", f"Unknown group {name!r}; use any of: {', '.join(GROUPS)}.")
    if len(set(group_by)) != len(group_by):
        fail("group_by", "A group is named twice.")

    values_by_name = {name: _values(params, name) for name in FILTER_PARAMETERS}
    for name, values in values_by_name.items():
        if len(values) > MAX_VALUES:
            fail(name, f"At most {MAX_VALUES} values.")
        if name == "status":
            for value in values:
                if value not in Status.values:
                    fail(name, f"Unknown status {value!r}; use one of: {', '.join(Status.values)}.")
    filters = UsageFilters.from_cleaned(values_by_name)
    for name in LOG_ONLY_FILTERS:
        if params.get(name) not in (None, ""):
            fail(name, "The usage API reads aggregates and cannot filter by this; use /api/v1/logs.")

    moments = {}
    for name in ("start", "end"):
        raw = params.get(name)
        if raw not in (None, ""):
            try:
                moments[name] = _moment(raw, zone)
            except ValueError as exc:
                fail(name, str(exc))
    preset = (params.get("range") or "").strip()
    if preset and preset not in LOG_RANGES:
        fail("range", range_message(preset))
    if errors:
        return None, errors

    # As on the log list: start wins over a preset, a preset is a window ending now.
    start, end = time_bounds(preset, moments.get("start"), moments.get("end"), now=now)
    end = end or now
    if start is None:
        # The last 7 local days, the day holding `end` included.
        last_day = (end - timedelta(microseconds=1)).astimezone(zone).date()
        start = datetime.combine(last_day - timedelta(days=DEFAULT_DAYS - 1), time(0), tzinfo=zone)
    if end <= start:
        fail("end", END_BEFORE_START)
    elif end - start > RANGE_LIMITS[bucket]:
        fail(
            "bucket",
            f"bucket={bucket} covers at most {_days(RANGE_LIMITS[bucket])} days; this range is "
            f"{_days(end - start)} days. Use a coarser bucket or a shorter range.",
        )
    if errors:
        return None, errors
    try:
        query = UsageQuery(
            account=account,
            start=start,
            end=end,
            zone=zone,
            bucket=bucket,
            group_by=tuple(group_by),
            sums_only=True,
            **filters.query_kwargs(),
        )
    except UsageError as exc:
        return None, {exc.param: [exc.message]}
    return query, {}


# Sums of up to 30 digits (the rollup's max_digits) exceed the default 28 of precision.
_COST_CONTEXT = Context(prec=60)


def format_cost(figures: Totals) -> str | None:
    """The priced requests' cost as the log API writes a record's, rounded to COST_PLACES (a sum
    read from SQLite may come back with float noise); None when no request is priced."""
    if figures.requests and figures.unpriced == figures.requests:
        return None
    return format_record_cost(Decimal(figures.cost).quantize(_COST_QUANTUM, context=_COST_CONTEXT))


def format_moment(value: datetime, zone: ZoneInfo) -> str:
    """RFC 3339 with the zone's offset: 2026-11-20T00:00:00+05:30."""
    return value.astimezone(zone).isoformat()


def usage_page(query: UsageQuery, buckets: list[Bucket]) -> dict:
    """The answer: every bucket of the range, each cut to the part inside [start, end)."""
    items = []
    for bucket in buckets:
        results = []
        for key, figures in bucket.groups.items():
            result = {}
            for name, value in zip(query.group_by, key, strict=True):
                result[name] = (value or None) if name in _NULL_WHEN_EMPTY else value
            result.update(
                requests=figures.requests,
                errors=figures.errors,
                prompt_tokens=figures.prompt_tokens,
                completion_tokens=figures.completion_tokens,
                total_tokens=figures.total_tokens,
                cost=format_cost(figures),
                unpriced_requests=figures.unpriced,
            )
            results.append(result)
        items.append(
            {
                "start": format_moment(max(bucket.start, query.start), query.zone),
                "end": format_moment(min(bucket.end, query.end), query.zone),
                "results": results,
            }
        )
    return {
        "object": "page",
        "start": format_moment(query.start, query.zone),
        "end": format_moment(query.end, query.zone),
        "bucket": query.bucket,
        "timezone": query.zone.key,
        "group_by": list(query.group_by),
        "buckets": items,
    }


# --- schema only ---------------------------------------------------------------------------------


class UsageResultSerializer(serializers.Serializer):
    model = serializers.CharField(required=False, help_text="Only with group_by=model.")
    api_key = serializers.CharField(
        required=False, allow_null=True, help_text="Only with group_by=api_key; null for requests without a key."
    )
    # A plain string: a second component with Status.choices makes drf-spectacular rename the
    # log record's enum (a naming-collision warning).
    status = serializers.CharField(required=False, help_text="Only with group_by=status: success or error.")
    error_code = serializers.CharField(
        required=False, allow_null=True, help_text="Only with group_by=error_code; null for requests without one."
    )
    requests = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Requests with status error.")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.CharField(
        allow_null=True,
        help_text=f"USD of the priced requests, a decimal string exact to {COST_PLACES} places without trailing "
        'zeros, as a log record\'s cost ("4.12731", "0"); null when every request of the group is unpriced. '
        "Parse it as a decimal, not a float.",
    )
    unpriced_requests = serializers.IntegerField(
        min_value=0,
        help_text="Requests without a cost, not counted in `cost` (always present, 0 included). When some are "
        "priced and some not, `cost` is the priced ones' only.",
    )


class UsageBucketSerializer(serializers.Serializer):
    start = serializers.DateTimeField(
        help_text="Inclusive. RFC 3339 with the requested zone's offset (2026-11-20T00:00:00+05:30), on purpose: "
        "unlike record timestamps (UTC, Z), a bucket edge is a local midnight and says so."
    )
    end = serializers.DateTimeField(help_text="Exclusive. RFC 3339 with the requested zone's offset, as `start`.")
    results = UsageResultSerializer(many=True, help_text="One item per group with requests; [] when none.")


class UsagePageSerializer(serializers.Serializer):
    object = serializers.ChoiceField(choices=["page"])
    start = serializers.DateTimeField(help_text="The range counted, inclusive; with the zone's offset.")
    end = serializers.DateTimeField(help_text="The range counted, exclusive; with the zone's offset.")
    bucket = serializers.ChoiceField(choices=BUCKETS)
    timezone = serializers.CharField(help_text="The IANA zone of the bucket boundaries.")
    group_by = serializers.ListField(child=serializers.ChoiceField(choices=GROUPS))
    buckets = UsageBucketSerializer(many=True)
