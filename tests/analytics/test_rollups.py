"""The rollups equal sums over the raw rows: maintained by ingest (duplicates never counted
twice), and recomputed by the rebuild."""

import io
import itertools
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from analytics.measures import MEASURES, empty_measures, merge
from analytics.models import (
    Projection,
    RollupState,
    SliceDimension,
    UsageDay,
    UsageHour,
    UsageQuarter,
    UsageSlice,
    UsageSliceDay,
    UsageUtcDay,
)
from analytics.rollups import rebuild
from logs.ingest.services import ingest_records
from logs.models import RequestLog


def _records(n, *, start, seed=7, prefix="r"):
    rng = random.Random(seed)
    records = []
    for i in range(n):
        ts = start + timedelta(seconds=rng.randrange(0, 3 * 86400))
        error = rng.random() < 0.2
        record = {
            "request_id": f"{prefix}{i}",
            "timestamp": ts.isoformat().replace("+00:00", "Z"),
            "model": rng.choice(["gpt-4o", "claude-3", "llama"]),
            "status": "error" if error else "success",
            "prompt_tokens": rng.randrange(0, 5000),
            "completion_tokens": rng.randrange(0, 2000),
            "api_key": rng.choice(["key-a", "key-b", ""]),
            "latency_ms": rng.choice([None, rng.randrange(10, 9000)]),
            "cached_tokens": rng.choice([None, 10]),
        }
        if error:
            record["error_code"] = rng.choice(["rate_limited", "insufficient_balance"])
        if rng.random() < 0.7:
            record["cost"] = str(Decimal(rng.randrange(0, 10**9)) / Decimal(10**10))
        records.append(record)
    return records


def _snapshot(account):
    quarters = {
        q.start: tuple(getattr(q, m) for m in (*MEASURES, "peak_minute_requests", "peak_minute_tokens"))
        for q in UsageQuarter.objects.filter(account=account)
    }
    days = {
        (d.projection, d.day, d.model, d.api_key, d.status, d.error_code): tuple(getattr(d, m) for m in MEASURES)
        for d in UsageDay.objects.filter(account=account)
    }
    slices = {
        (s.dimension, s.value, s.start): tuple(
            getattr(s, m) for m in (*MEASURES, "peak_minute_requests", "peak_minute_tokens")
        )
        for s in UsageSlice.objects.filter(account=account)
    }
    hours = {
        h.start: tuple(getattr(h, m) for m in (*MEASURES, "peak_minute_requests", "peak_minute_tokens"))
        for h in UsageHour.objects.filter(account=account)
    }
    slice_days = {
        (d.dimension, d.value, d.day): (d.peak_minute_requests, d.peak_minute_tokens)
        for d in UsageSliceDay.objects.filter(account=account)
    }
    utc_days = {d.day: tuple(getattr(d, m) for m in MEASURES) for d in UsageUtcDay.objects.filter(account=account)}
    return quarters, days, slices, hours, slice_days, utc_days


def _utc_days_from_hours(hours: dict) -> dict:
    by_day: dict = {}
    for start, values in hours.items():
        row = by_day.setdefault(start.date(), list(empty_measures()))
        merge(row, values[: len(MEASURES)])
    return {day: tuple(values) for day, values in by_day.items()}


def _slice_days_from_slots(quarters: dict, slices: dict) -> dict:
    """What the slice-day rows must hold: each value's largest slot peaks per UTC day, and
    with dimension 0 the largest quarter peaks."""
    days = {}
    slots = [*(((0, "", start), values) for start, values in quarters.items()), *slices.items()]
    for (dimension, value, start), values in slots:
        key = (dimension, value, start.astimezone(UTC).date())
        requests, tokens = days.get(key, (0, 0))
        days[key] = (max(requests, values[-2]), max(tokens, values[-1]))
    return days


def _hours_from_quarters(quarters: dict) -> dict:
    """What the hour rows must hold: their quarters added up, the largest peaks."""
    hours = {}
    for start, values in quarters.items():
        hour = start.replace(minute=0)
        if hour not in hours:
            hours[hour] = list(values)
            continue
        row = hours[hour]
        for i, name in enumerate((*MEASURES, "peak_minute_requests", "peak_minute_tokens")):
            if values[i] is None:
                continue
            if name in ("latency_max", "max_total_tokens", "max_cost") or name.startswith("peak_"):
                row[i] = values[i] if row[i] is None else max(row[i], values[i])
            else:
                row[i] += values[i]
    return {hour: tuple(values) for hour, values in hours.items()}


@pytest.mark.django_db
def test_ingest_keeps_rollups_equal_to_raw_sums_and_ignores_duplicates(acme):
    acme.timezone = "Asia/Kathmandu"
    acme.save()
    start = datetime(2026, 11, 20, tzinfo=UTC)
    records = _records(600, start=start)
    for i in range(0, 600, 150):
        ingest_records(account=acme, records=records[i : i + 150])
    # Re-sent: all duplicates, nothing changes.
    before = _snapshot(acme)
    result = ingest_records(account=acme, records=records[100:300])
    assert (result.accepted, result.duplicates) == (0, 200)
    assert _snapshot(acme) == before

    raw = RequestLog.objects.filter(account=acme).aggregate(
        n=Count("id"), errors=Count("id", filter=Q(status="error")), usd=Sum("cost"),
        tokens=Sum("total_tokens"), unpriced=Count("id", filter=Q(cost__isnull=True)), most=Max("total_tokens"),
    )  # fmt: skip
    quarters = UsageQuarter.objects.filter(account=acme).aggregate(
        n=Sum("requests"), n_errors=Sum("errors"), usd=Sum("cost"), tokens=Sum("total_tokens"),
        n_unpriced=Sum("unpriced"), most=Max("max_total_tokens"),
    )  # fmt: skip
    days = UsageDay.objects.filter(account=acme, projection=Projection.FULL).aggregate(
        n=Sum("requests"), n_errors=Sum("errors"), usd=Sum("cost"), tokens=Sum("total_tokens"),
        n_unpriced=Sum("unpriced"), most=Max("max_total_tokens"),
    )  # fmt: skip
    projections = [
        UsageDay.objects.filter(account=acme, projection=projection).aggregate(
            n=Sum("requests"),
            n_errors=Sum("errors"),
            usd=Sum("cost"),
            tokens=Sum("total_tokens"),
            n_unpriced=Sum("unpriced"),
            most=Max("max_total_tokens"),
        )
        for projection in (Projection.MODEL, Projection.KEY, Projection.TOTAL)
    ]
    assert raw["n"] == 600
    for figures in (quarters, days, *projections):
        assert figures["n"] == raw["n"] and figures["n_errors"] == raw["errors"]
        assert figures["tokens"] == raw["tokens"] and figures["n_unpriced"] == raw["unpriced"]
        assert figures["most"] == raw["most"]
        assert round(figures["usd"], 6) == round(raw["usd"], 6)

    # Days are Kathmandu (+05:45) days: the rows of one local day.
    day = date(2026, 11, 21)
    lower = datetime(2026, 11, 20, 18, 15, tzinfo=UTC)
    in_day = RequestLog.objects.filter(account=acme, timestamp__gte=lower, timestamp__lt=lower + timedelta(days=1))
    assert UsageDay.objects.get(account=acme, day=day, projection=Projection.TOTAL).requests == in_day.count()
    by_model = UsageDay.objects.filter(account=acme, day=day, projection=Projection.MODEL).values_list("model")
    assert dict(by_model.annotate(n=Sum("requests"))) == {
        model: in_day.filter(model=model).count() for model in in_day.values_list("model", flat=True).distinct()
    }
    assert RollupState.objects.get(account=acme).day_timezone == "Asia/Kathmandu"


@pytest.mark.django_db
def test_peak_minute_counts_every_batch_of_the_minute(acme):
    minute = datetime(2026, 11, 22, 10, 7, tzinfo=UTC)

    def batch(prefix, n, tokens):
        return [
            {"request_id": f"{prefix}{i}", "timestamp": (minute + timedelta(seconds=i)).isoformat(), "model": "m",
             "status": "success", "prompt_tokens": tokens, "completion_tokens": 0}
            for i in range(n)
        ]  # fmt: skip

    ingest_records(account=acme, records=batch("a", 3, 10))
    ingest_records(account=acme, records=batch("b", 4, 100))  # same minute, another batch
    ingest_records(account=acme, records=[{**batch("c", 1, 5)[0], "timestamp": "2026-11-22T10:09:00Z"}])
    ingest_records(account=acme, records=[{**r, "model": "n"} for r in batch("d", 2, 1000)])
    quarter = UsageQuarter.objects.get(account=acme, start=datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
    assert quarter.requests == 10
    assert (quarter.peak_minute_requests, quarter.peak_minute_tokens) == (9, 2430)
    peaks = {
        s.value: (s.requests, s.peak_minute_requests, s.peak_minute_tokens)
        for s in UsageSlice.objects.filter(account=acme, dimension=SliceDimension.MODEL)
    }
    assert peaks == {"m": (8, 7, 430), "n": (2, 2, 2000)}
    day_peaks = {
        d.value: (d.day, d.peak_minute_requests, d.peak_minute_tokens)
        for d in UsageSliceDay.objects.filter(account=acme, dimension=SliceDimension.MODEL)
    }
    assert day_peaks == {"m": (minute.date(), 7, 430), "n": (minute.date(), 2, 2000)}
    every_request = UsageSliceDay.objects.get(account=acme, dimension=0, value="")
    assert (every_request.day, every_request.peak_minute_requests, every_request.peak_minute_tokens) == (
        minute.date(),
        9,
        2430,
    )


@pytest.mark.django_db
def test_rebuild_equals_what_ingest_maintained(acme, globex):
    acme.timezone = "Asia/Kolkata"
    acme.save()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
    records = _records(400, start=start, seed=3)
    ingest_records(account=acme, records=records)
    ingest_records(account=globex, records=_records(50, start=start, seed=4, prefix="g"))
    maintained = _snapshot(acme)
    globex_before = _snapshot(globex)
    assert maintained[3] == _hours_from_quarters(maintained[0])  # ingest kept hours too
    assert maintained[5] == _utc_days_from_hours(maintained[3])  # and UTC days
    assert set(maintained[5]) == {datetime.fromisoformat(r["timestamp"]).date() for r in records}
    assert maintained[4] == _slice_days_from_slots(
        maintained[0], maintained[2]
    )  # and each value's busiest minute a day
    assert len(maintained[4]) > 9  # 3 models, 3 keys and 2 statuses over 4 or 5 UTC days
    UsageQuarter.objects.filter(account=acme).update(requests=0)
    UsageHour.objects.filter(account=acme).update(requests=0, peak_minute_requests=0)
    UsageUtcDay.objects.filter(account=acme).update(requests=7)
    UsageDay.objects.filter(account=acme).delete()
    UsageSlice.objects.filter(account=acme, dimension=SliceDimension.MODEL).delete()
    UsageSlice.objects.filter(account=acme).update(peak_minute_requests=0)
    UsageSliceDay.objects.filter(account=acme, dimension=SliceDimension.API_KEY).delete()
    UsageSliceDay.objects.filter(account=acme).update(peak_minute_tokens=1)

    call_command("rebuild_rollups", "--account", acme.slug, "--days", "10")
    rebuilt = _snapshot(acme)
    assert rebuilt[4] == maintained[4]
    assert {day: values[0] for day, values in rebuilt[5].items()} == {
        day: values[0] for day, values in maintained[5].items()
    }
    assert _utc_days_from_hours(rebuilt[3]) == rebuilt[5]
    for table in range(4):
        assert rebuilt[table].keys() == maintained[table].keys()
    cost_at = MEASURES.index("cost")
    for table in (0, 2, 3):  # quarters, slices and hours: every measure and both peaks
        for key, values in maintained[table].items():
            again = rebuilt[table][key]
            assert again[:cost_at] == values[:cost_at] and round(again[cost_at], 6) == round(values[cost_at], 6)
            assert again[cost_at + 1 : -3] == values[cost_at + 1 : -3]  # up to max_cost (SQLite rounds it)
            assert again[-2:] == values[-2:]
    for key, values in maintained[1].items():
        assert rebuilt[1][key][:cost_at] == values[:cost_at]
    assert sum(v[0] for key, v in rebuilt[1].items() if key[0] == Projection.FULL) == 400
    # Slices are complete: per model, status and key they add up to the raw rows.
    for dimension, column in (
        (SliceDimension.MODEL, "model"),
        (SliceDimension.API_KEY, "api_key"),
        (SliceDimension.STATUS, "status"),
    ):
        raw = dict(RequestLog.objects.filter(account=acme).values_list(column).annotate(n=Count("id")))
        sliced = (
            UsageSlice.objects.filter(account=acme, dimension=dimension)
            .values_list("value")
            .annotate(n=Sum("requests"))
        )
        assert dict(sliced) == raw
    assert _snapshot(globex) == globex_before  # another account's rollups untouched


@pytest.mark.django_db
def test_rebuilding_one_local_day_rewrites_whole_utc_days_of_peaks(acme):
    """A local day in Asia/Kolkata runs from 18:30 to 18:30 UTC: the per-day peaks of both
    UTC days it touches come from all their slots, not only the rebuilt ones."""
    acme.timezone = "Asia/Kolkata"
    acme.save()
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=4)
    ingest_records(account=acme, records=_records(600, start=start, seed=12))
    maintained = _snapshot(acme)[4]
    local_day = (start + timedelta(days=1, hours=12)).astimezone(acme.zone).date()
    touched = {start.date(), (start + timedelta(days=1)).date()}  # [day 0 18:30, day 1 18:30) UTC
    assert sum(1 for key in maintained if key[2] in touched) > 9
    UsageSliceDay.objects.filter(account=acme, day__in=touched).update(peak_minute_requests=0, peak_minute_tokens=0)

    rebuild(acme, local_day, local_day)
    assert _snapshot(acme)[4] == maintained


@pytest.mark.django_db
def test_rebuild_leaves_days_past_retention_alone(acme):
    old = datetime.now(UTC) - timedelta(days=acme.retention_days + 5)
    UsageDay.objects.create(account=acme, day=old.date(), model="m", status="success", requests=5)
    result = rebuild(acme, old.date() - timedelta(days=1), datetime.now(UTC).date())
    assert result.skipped_before is not None
    # The FULL row: on the 1st of a month the month rows (FULL_MONTH ...) share its day.
    assert UsageDay.objects.get(account=acme, day=old.date(), projection=Projection.FULL).requests == 5


@pytest.mark.django_db
def test_recent_minutes_are_counted_from_the_minute_table_and_purged(acme):
    from analytics.models import UsageMinute
    from analytics.rollups import purge_minutes

    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30)

    def batch(prefix, n, tokens):
        return [
            {"request_id": f"{prefix}{i}", "timestamp": (minute + timedelta(seconds=i)).isoformat(), "model": "m",
             "status": "success", "prompt_tokens": tokens, "completion_tokens": 0}
            for i in range(n)
        ]  # fmt: skip

    ingest_records(account=acme, records=batch("a", 3, 10))
    ingest_records(account=acme, records=batch("b", 5, 100))
    ingest_records(account=acme, records=batch("a", 3, 10))  # duplicates: nothing added
    assert UsageMinute.objects.get(account=acme, minute=minute, dimension=0).requests == 8
    per_value = UsageMinute.objects.filter(account=acme, minute=minute).exclude(dimension=0)
    assert sorted(per_value.values_list("dimension", "value", "requests")) == [
        (1, "m", 8),
        (2, "", 8),  # no API key is a key value too: grouped by key, those requests count
        (3, "success", 8),
    ]
    quarter = UsageQuarter.objects.get(account=acme, start=minute.replace(minute=minute.minute - minute.minute % 15))
    assert (quarter.peak_minute_requests, quarter.peak_minute_tokens) == (8, 530)

    UsageMinute.objects.filter(account=acme).update(minute=minute - timedelta(days=3))
    assert purge_minutes() == 4 and not UsageMinute.objects.exists()


def _descents(account) -> list[tuple[int, int]]:
    """(rows, rows that sort before the row physically preceding them) of the account's
    October slices and daily rows, in heap order."""
    from django.db import connection

    out = []
    with connection.cursor() as cursor:
        for sql in (
            "SELECT dimension, value, start FROM analytics_usageslice WHERE account_id = %s "
            "AND start < '2026-11-01' ORDER BY ctid",
            "SELECT projection, model, api_key, status, error_code, day FROM analytics_usageday "
            "WHERE account_id = %s AND day < '2026-11-01' ORDER BY ctid",
        ):
            cursor.execute(sql, [account.pk])
            rows = cursor.fetchall()
            out.append((len(rows), sum(later < earlier for earlier, later in itertools.pairwise(rows))))
    return out


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_compacting_a_month_keeps_every_row_and_orders_them_by_value(acme, globex):

    from analytics.rollups import compact_month
    from analytics.tasks import compact_last_month

    start = datetime(2026, 10, 20, tzinfo=UTC)
    ingest_records(account=acme, records=_records(600, start=start, seed=5))
    ingest_records(account=globex, records=_records(80, start=start, seed=6, prefix="g"))
    before, globex_before = _snapshot(acme), _snapshot(globex)

    slices_before, _days_before = _descents(acme)
    assert compact_month(acme, date(2026, 10, 1)) > 0
    assert _snapshot(acme) == before and _snapshot(globex) == globex_before
    # Heap order (ctid) is now value order. PostgreSQL may put a row or two in a slot freed
    # on an earlier page, so a stray descent is allowed; ingest's interleaving had hundreds.
    (slices, slice_descents), (days, day_descents) = _descents(acme)
    assert slices > 100 and days > 100
    assert slice_descents <= 2 and day_descents <= 2
    assert slices_before[1] > 100
    # The monthly task does every account's last month, changing no figure.
    compact_last_month()
    assert _snapshot(acme) == before and _snapshot(globex) == globex_before


@pytest.mark.django_db
def test_migration_fills_slice_days_from_existing_slices(acme, globex):
    import importlib
    from types import SimpleNamespace

    from django.db import connection

    migration = importlib.import_module("analytics.migrations.0008_slice_days")
    start = datetime(2026, 11, 20, 22, tzinfo=UTC)  # across UTC midnights
    ingest_records(account=acme, records=_records(300, start=start, seed=8))
    ingest_records(account=globex, records=_records(40, start=start, seed=9, prefix="g"))
    kept = _snapshot(acme)[4], _snapshot(globex)[4]
    UsageSliceDay.objects.all().delete()  # as before the migration
    migration.slice_days_from_slices(None, SimpleNamespace(connection=connection))
    assert (_snapshot(acme)[4], _snapshot(globex)[4]) == kept
    quarters, _, slices, *_ = _snapshot(acme)
    assert kept[0] == _slice_days_from_slots(quarters, slices) and len(kept[0]) > 9


@pytest.mark.django_db
def test_rebuild_past_retention_reaches_the_oldest_stored_row_east_of_utc(acme):
    """Rows loaded behind ingest's back, the oldest late in a local day that is already past
    "retention days before local today" (Asia/Tokyo just after its midnight): the rebuild
    with --past-retention covers every stored row."""
    from tests.factories import make_log

    acme.timezone = "Asia/Tokyo"
    acme.save(update_fields=["timezone"])
    zone = ZoneInfo("Asia/Tokyo")
    today = timezone.now().astimezone(zone).date()
    window_start = datetime.combine(today - timedelta(days=acme.retention_days), datetime.min.time(), tzinfo=zone)
    stamps = [
        window_start - timedelta(minutes=50),
        window_start - timedelta(minutes=5),
        window_start + timedelta(hours=2),
    ]
    for moment in stamps:
        make_log(acme, timestamp=moment.astimezone(UTC))
    call_command(
        "rebuild_rollups", "--account", acme.slug, "--past-retention", stdout=io.StringIO(), stderr=io.StringIO()
    )
    assert sum(UsageQuarter.objects.filter(account=acme).values_list("requests", flat=True)) == 3
    assert (
        sum(UsageDay.objects.filter(account=acme, projection=Projection.TOTAL).values_list("requests", flat=True)) == 3
    )
