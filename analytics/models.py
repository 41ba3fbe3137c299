"""Rollups of the request log, kept beside it by ingest in the same transaction.

The grains, chosen by measurement (see README "Analytics: how the numbers are kept"):

- `UsageQuarter`: one row per account and 15-minute UTC slot, no dimensions. Every real
  time zone's offset is a multiple of 15 minutes, so any zone's hour, day, week and month
  is a whole number of slots: unfiltered charts are exact in every zone (India +05:30,
  Nepal +05:45, DST changes) from at most 35,040 rows per account-year.
- `UsageDay`: one row per account, local day in the account's reporting time zone, model,
  API key, status and error code. Filtered or grouped figures by day, week or month come
  from here. An hourly rollup with these dimensions was nearly as big as the raw table.
  Each day is kept in five *projections* (`Projection`): all four dimensions, model and
  status, API key and status, status and error code, and none. At 10 M rows the largest account had 255,000
  full rows a year (16 models x 40 keys x outcomes): a year's cost by model read 140 ms
  from them and reads a few ms from the projection without keys; a year's daily totals
  read 366 rows instead of 35,000 quarter rows. Each projection is also summed by local
  month (`Projection.FULL_MONTH` ...): a year's cost by key with a model filter read 32,000
  scattered full rows (85 ms); whole months read a few hundred.

- `UsageHour`: the quarters of each UTC hour added up, for the same figures from a quarter
  of the rows wherever an hour lies inside one bucket (see analytics/usage/planner.py).
- `UsageSlice`: one row per account, 15-minute UTC slot and value of one dimension (a
  model, an API key or a status). A filter or grouping by one of these in any zone's hours
  (the heatmap, busiest hours, busiest minute, hourly trends) reads the slices of that value
  instead of the raw rows: a year of one model or key is at most 35,040 rows. One dimension
  at a time: an hourly rollup of model x key x status reached 7.6 M rows at 10 M raw rows
  and read in 595 ms; the key slices alone added 5.4 M rows but each read touches only the
  slots of the keys asked for, through the covering index.
- `UsageSliceDay`: each slice value's busiest minute per UTC day, from its slices: the
  day-level bound of the busiest minute of several values.
- `UsageUtcDay`: the hours of each UTC day added up, per account, indexed by day first:
  the operator's all-accounts view reads its whole days here.

What none of them answers exactly (filters on two dimensions in another zone's days or by
hour, sub-day range edges) is read from raw rows, bounded by the range; see analytics/usage/.
"""

from django.db import models
from django.db.models import Q

from console.models import Account

DIMENSIONS = ("model", "api_key", "status", "error_code")


class Projection(models.IntegerChoices):
    FULL = 0, "model, API key, status, error code"
    MODEL = 1, "model, status"
    KEY = 2, "API key, status"
    TOTAL = 3, "no dimension"
    CODE = 4, "status, error code"
    # Each projection + MONTHLY: the same rows summed over a local month (`day` holds its
    # first day); a year grouped by key or model reads 12 of them per combination, not 365.
    FULL_MONTH = 10, "model, API key, status, error code; by month"
    MODEL_MONTH = 11, "model, status; by month"
    KEY_MONTH = 12, "API key, status; by month"
    TOTAL_MONTH = 13, "no dimension; by month"
    CODE_MONTH = 14, "status, error code; by month"


MONTHLY = 10

# The dimensions each projection keeps; the others hold "" in its rows.
PROJECTION_DIMENSIONS = {
    Projection.FULL: frozenset(DIMENSIONS),
    Projection.MODEL: frozenset({"model", "status"}),
    Projection.KEY: frozenset({"api_key", "status"}),
    Projection.TOTAL: frozenset(),
    Projection.CODE: frozenset({"status", "error_code"}),
}


class Measures(models.Model):
    """The columns of analytics.measures (the one table of measures), on every rollup row."""

    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    # Cost of the priced requests only; `unpriced` counts the others.
    cost = models.DecimalField(max_digits=30, decimal_places=12, default=0)
    unpriced = models.BigIntegerField(default=0)
    # Requests that reported a latency, their sum and the largest.
    latency_count = models.BigIntegerField(default=0)
    latency_sum = models.BigIntegerField(default=0)
    latency_max = models.IntegerField(null=True, blank=True)
    max_total_tokens = models.IntegerField(default=0)
    max_cost = models.DecimalField(max_digits=24, decimal_places=12, null=True, blank=True)

    class Meta:
        abstract = True


class PeakMinute(models.Model):
    """The busiest minute inside a row's time: its requests and tokens (see each model for
    whose requests)."""

    peak_minute_requests = models.IntegerField(default=0)
    peak_minute_tokens = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class UsageQuarter(Measures, PeakMinute):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    start = models.DateTimeField(help_text="UTC start of the 15-minute slot")
    # PeakMinute: the busiest minute inside the slot, over all of the account's requests in it.

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "start"], name="usagequarter_account_start")]
        indexes = [
            # The most expensive requests: quarters in order of their dearest request.
            models.Index(
                fields=["account", "-max_cost"], name="usagequarter_max_cost", condition=Q(max_cost__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.start:%Y-%m-%d %H:%M}"


class UsageHour(Measures, PeakMinute):
    """The four quarters of a UTC hour added up (kept from them at ingest and rebuild).

    A year of another zone's days, the heatmap, the busiest minute and the operator's view
    read a quarter of the rows. Exact wherever the hour lies inside one bucket; the hours
    that a bucket boundary cuts (zones at +05:30 or +05:45) are read as their quarters."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    start = models.DateTimeField(help_text="UTC start of the hour")
    # PeakMinute: the busiest of its quarters' busiest minutes.

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "start"], name="usagehour_account_start")]
        # Every account's hours of a range (the operator view's partial days at its edges).
        indexes = [models.Index(fields=["start"], name="usagehour_start")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.start:%Y-%m-%d %H:00}"


class SliceDimension(models.IntegerChoices):
    MODEL = 1, "model"
    API_KEY = 2, "API key"
    STATUS = 3, "status"


# The raw column (and filter / group name) of each slice dimension.
SLICE_COLUMNS = {SliceDimension.MODEL: "model", SliceDimension.API_KEY: "api_key", SliceDimension.STATUS: "status"}


class UsageSlice(Measures, PeakMinute):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    dimension = models.PositiveSmallIntegerField(choices=SliceDimension.choices)
    value = models.CharField(max_length=255, blank=True, default="")
    start = models.DateTimeField(help_text="UTC start of the 15-minute slot")
    # PeakMinute: the busiest minute inside the slot, over the requests with this value.

    class Meta:
        constraints = [
            # Time first: reads of every value (grouped by model, the edges of a range).
            models.UniqueConstraint(
                fields=["account", "dimension", "start", "value"], name="usageslice_account_dimension_start_value"
            )
        ]
        indexes = [
            # Reads of chosen values. On PostgreSQL (SQLite has no INCLUDE) the heatmap, the
            # busiest minute and hours and the dearest requests of a value read only this
            # index: in the heap a value's slots lie about one per page, among other rows.
            models.Index(
                fields=["account", "dimension", "value", "start"],
                name="usageslice_value_covering",
                include=["requests", "peak_minute_requests", "peak_minute_tokens", "max_cost"],
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.get_dimension_display()}={self.value} {self.start:%Y-%m-%d %H:%M}"


class UsageSliceDay(PeakMinute):
    """The busiest minute of each slice value per UTC day: the largest of its slots' peaks
    (kept from them at ingest and rebuild), and with dimension 0 and value "" of all the
    account's requests (from its quarters).

    The busiest minute of several values (three models) is bounded day by day by the sum
    of each value's busiest minute that day; from the slices that meant grouping a year of
    each value's slots (100,000 index entries, 30 ms at 10 M rows), from here it is 365
    rows a value; the account's own busiest minute per day bounds them further from 365
    rows, where its hour rows were 8,760."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    # 0: every request of the day (value ""); else a SliceDimension.
    dimension = models.PositiveSmallIntegerField()
    value = models.CharField(max_length=255, blank=True, default="")
    day = models.DateField(help_text="UTC date")

    class Meta:
        constraints = [
            # No INCLUDE: SQLite would then not create the constraint that ingest's upsert
            # needs. A year of three values is about 1,100 rows either way.
            models.UniqueConstraint(
                fields=["account", "dimension", "value", "day"], name="usagesliceday_account_value_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.dimension}={self.value} {self.day}"


class UsageUtcDay(Measures):
    """The hours of a UTC day added up, per account (kept from them at ingest and rebuild).

    The operator's view of every account reads its whole days from here: at most one row
    per account and day, in one range of the (day, account) index, small by construction
    whatever the state of the cache. The hours held 24 times as many rows (a year of every
    account at 10 M rows: 0.7 s warm, a timeout cold), and the accounts' own days are in
    their own zones."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField(help_text="UTC date")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "account"], name="usageutcday_day_account")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.day}"


class UsageDay(Measures):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    projection = models.PositiveSmallIntegerField(choices=Projection.choices, default=Projection.FULL)
    day = models.DateField(help_text="Local date in the rollup zone (RollupState.day_timezone)")
    model = models.CharField(max_length=255)
    api_key = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=8)
    error_code = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "projection", "day", "model", "api_key", "status", "error_code"],
                name="usageday_account_dims",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.day} {self.model}"


class UsageMinute(models.Model):
    """Requests and tokens per account and UTC minute, for recent minutes only.

    Ingest adds a batch's minutes here and reads back their totals to keep each quarter's
    busiest minute, without counting the raw rows of those minutes again (which grew with
    the traffic of every minute a batch touched). Minutes older than
    METERLOG_MINUTE_ROLLUP_HOURS are deleted hourly; a late record for such a minute is
    counted from the raw rows instead."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    minute = models.DateTimeField()
    # 0 with value "": every request of the minute; else one slice value (UsageSlice).
    dimension = models.PositiveSmallIntegerField(default=0)
    value = models.CharField(max_length=255, blank=True, default="")
    requests = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "minute", "dimension", "value"], name="usageminute_account_minute_value"
            )
        ]
        indexes = [models.Index(fields=["minute"], name="usageminute_minute")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.minute:%Y-%m-%d %H:%M}"


class RollupState(models.Model):
    """The zone whose local days UsageDay rows hold for an account.

    It is the account's reporting zone when its rows were rolled up; after the account
    changes zone, `rebuild_rollups` moves the days still backed by raw rows to the new
    zone and then this row. Queries use the daily rows only in this zone."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="+", primary_key=True)
    day_timezone = models.CharField(max_length=64)
    # UsageSlice rows are complete from this UTC time on (None: from the account's first
    # row). Accounts that had rows before slices existed get the upgrade time; a rebuild
    # reaching back moves it earlier. Queries read older slots raw.
    slices_since = models.DateTimeField(null=True, blank=True)
    # The same for the API-key slices, which came later (migration 0005).
    key_slices_since = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.account_id} days in {self.day_timezone}"
