"""usage() agrees with a sum over the raw rows computed here in Python, for every bucket,
grouping and filter, in zones with half- and quarter-hour offsets and across a DST change.
Whatever source the planner picks (quarters, days, raw edges), the figures must match."""

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from analytics.usage import (
    UsageQuery,
    bucket_edges,
    busiest_hours,
    heatmap,
    hour_start,
    offset_stretches,
    peak_minute,
    plan,
    top_requests,
    usage,
)
from logs.gate import all_accounts
from logs.ingest.services import ingest_records
from logs.models import RequestLog

# Around Europe/Berlin's change from CEST to CET (2026-10-25 03:00 local).
SPAN_START = datetime(2026, 10, 18, 5, 7, 13, tzinfo=UTC)
SPAN_DAYS = 16


def _ingest(account, n=900, seed=11, start=SPAN_START, days=SPAN_DAYS):
    rng = random.Random(seed)
    records = []
    for i in range(n):
        ts = start + timedelta(seconds=rng.randrange(0, days * 86400))
        error = rng.random() < 0.25
        record = {
            "request_id": f"u{i}",
            "timestamp": ts.isoformat(),
            "model": rng.choice(["gpt-4o", "claude-3", "llama"]),
            "status": "error" if error else "success",
            "prompt_tokens": rng.randrange(0, 3000),
            "completion_tokens": rng.randrange(0, 900),
            "api_key": rng.choice(["key-a", "key-b"]),
        }
        if error:
            record["error_code"] = rng.choice(["rate_limited", "insufficient_balance"])
        if rng.random() < 0.8:
            record["cost"] = str(Decimal(rng.randrange(1, 10**8)) / Decimal(10**9))
        records.append(record)
    ingest_records(account=account, records=records)
    return list(RequestLog.objects.filter(account=account).values())


def _expected(rows, q):
    edges = bucket_edges(q.start, q.end, q.zone, q.bucket)
    result = [defaultdict(lambda: [0, 0, 0, Decimal(0), 0]) for _ in edges]
    for row in rows:
        ts = row["timestamp"]
        if not (q.start <= ts < q.end):
            continue
        if (q.models and row["model"] not in q.models) or (q.statuses and row["status"] not in q.statuses):
            continue
        if q.api_keys and row["api_key"] not in q.api_keys:
            continue
        index = next(i for i, (lower, upper) in enumerate(edges) if lower <= ts < upper)
        figures = result[index][tuple(row[name] for name in q.group_by)]
        figures[0] += 1
        figures[1] += row["status"] == "error"
        figures[2] += row["total_tokens"]
        figures[3] += row["cost"] or 0
        figures[4] += row["cost"] is None
    return [{key: tuple(v) for key, v in bucket.items()} for bucket in result]


def _actual(q):
    return [
        {key: (t.requests, t.errors, t.total_tokens, t.cost, t.unpriced) for key, t in bucket.groups.items()}
        for bucket in usage(q)
    ]


def _same(actual, expected):
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key][:3] == want[key][:3] and got[key][4] == want[key][4]
            assert round(got[key][3], 2) == round(want[key][3], 2)  # to the cent
            assert abs(got[key][3] - want[key][3]) < Decimal("0.000001")


CASES = [
    # zone, bucket, group_by, filters
    ("Asia/Kolkata", "day", (), {}),
    ("Asia/Kathmandu", "day", ("model",), {}),
    ("Asia/Kathmandu", "hour", (), {}),
    ("Asia/Kolkata", "hour", ("api_key",), {"statuses": ("error",)}),
    ("Europe/Berlin", "hour", (), {}),
    ("Europe/Berlin", "day", ("model", "status"), {"api_keys": ("key-a",)}),
    ("Europe/Berlin", "week", (), {"models": ("gpt-4o", "llama")}),
    ("Asia/Kolkata", "month", ("model",), {}),
    ("Asia/Kolkata", None, ("api_key",), {}),
    ("UTC", None, (), {}),
    # One dimension by hour or in another zone's days: read from the slices.
    ("Asia/Kathmandu", "hour", ("model",), {"models": ("llama", "gpt-4o")}),
    ("Europe/Berlin", "hour", (), {"api_keys": ("key-b",)}),
    ("America/St_Johns", "day", ("status",), {}),
    ("Asia/Kathmandu", "week", (), {"statuses": ("error",)}),
    ("Asia/Kathmandu", "day", ("api_key",), {}),
]


@pytest.mark.django_db
@pytest.mark.parametrize("account_zone", ["Asia/Kolkata", "Europe/Berlin"])
def test_usage_matches_raw_sums(acme, account_zone):
    acme.timezone = account_zone
    acme.save()
    rows = _ingest(acme)
    # Odd edges: mid-quarter, mid-day, over the DST change.
    start = SPAN_START + timedelta(days=1, hours=3, minutes=7, seconds=5)
    end = SPAN_START + timedelta(days=SPAN_DAYS - 2, hours=5, minutes=41)
    for zone, bucket, group_by, filters in CASES:
        q_end = start + timedelta(days=3, minutes=2) if bucket == "hour" else end
        q = UsageQuery(account=acme, start=start, end=q_end, zone=ZoneInfo(zone), bucket=bucket,
                       group_by=group_by, **filters)  # fmt: skip
        _same(_actual(q), _expected(rows, q))


@pytest.mark.django_db
def test_berlin_dst_day_has_25_hours_and_every_bucket_listed(acme):
    acme.timezone = "Europe/Berlin"
    acme.save()
    rows = _ingest(acme, n=300)
    zone = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 10, 24, tzinfo=zone)
    end = datetime(2026, 10, 27, tzinfo=zone)
    buckets = usage(UsageQuery(account=acme, start=start, end=end, zone=zone, bucket="day"))
    assert [b.end - b.start for b in buckets] == [timedelta(hours=24), timedelta(hours=25), timedelta(hours=24)]
    hours = usage(UsageQuery(account=acme, start=start, end=end, zone=zone, bucket="hour"))
    assert len(hours) == 73
    in_range = [r for r in rows if start <= r["timestamp"] < end]
    assert sum(b.total.requests for b in hours) == len(in_range) == sum(b.total.requests for b in buckets)


@pytest.mark.django_db
def test_peak_heatmap_and_top_requests_match_raw(acme):
    acme.timezone = "Asia/Kathmandu"
    acme.save()
    rows = _ingest(acme, n=600, seed=5)
    zone = ZoneInfo("Asia/Kathmandu")
    start = SPAN_START + timedelta(hours=5, minutes=3)
    end = SPAN_START + timedelta(days=12, minutes=1)
    in_range = [r for r in rows if start <= r["timestamp"] < end]
    for filters in ({}, {"models": ("llama",)}, {"models": ("llama", "gpt-4o")}, {"statuses": ("error",)},
                    {"api_keys": ("key-b",)}):  # fmt: skip
        q = UsageQuery(account=acme, start=start, end=end, zone=zone, **filters)
        chosen = _expected_rows(in_range, q)
        per_minute = defaultdict(lambda: [0, 0])
        grid = [[0] * 24 for _ in range(7)]
        for r in chosen:
            minute = r["timestamp"].replace(second=0, microsecond=0)
            per_minute[minute][0] += 1
            per_minute[minute][1] += r["total_tokens"]
            local = r["timestamp"].astimezone(zone)
            grid[local.weekday()][local.hour] += 1
        assert peak_minute(q) == (
            max(v[0] for v in per_minute.values()),
            max(v[1] for v in per_minute.values()),
        )
        assert heatmap(q) == grid
        priced = sorted((r for r in chosen if r["cost"] is not None), key=lambda r: (r["cost"], r["timestamp"]))
        expected = [r["request_id"] for r in reversed(priced[-10:])]
        assert [r["request_id"] for r in top_requests(q, n=10)] == expected


@pytest.mark.django_db
def test_a_zone_alias_still_reads_the_daily_rows(acme):
    # Chromium reports Asia/Katmandu; the account's days are Asia/Kathmandu days.
    acme.timezone = "Asia/Kathmandu"
    acme.save()
    rows = _ingest(acme, n=200, seed=2)
    start, end = SPAN_START + timedelta(hours=1), SPAN_START + timedelta(days=9)
    alias = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("Asia/Katmandu"), bucket="day",
                       models=("llama",))  # fmt: skip
    assert "day" in [piece.source for piece in plan(alias)]
    other = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("Asia/Kolkata"), bucket="day",
                       models=("llama",))  # fmt: skip
    # Another zone's days come from the 15-minute slices of the model (raw at the edges).
    assert [piece.source for piece in plan(other)] == ["raw", "slice", "raw"]
    _same(_actual(alias), _expected(rows, alias))
    _same(_actual(other), _expected(rows, other))
    # Two dimensions in another zone: raw rows.
    both = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("Asia/Kolkata"), bucket="day",
                      models=("llama",), statuses=("error",))  # fmt: skip
    assert [piece.source for piece in plan(both)] == ["raw"]
    _same(_actual(both), _expected(rows, both))


@pytest.mark.django_db
@pytest.mark.parametrize("filters", [{}, {"models": ("llama", "gpt-4o")}])
def test_busiest_hours_match_raw_hour_totals(acme, filters):
    acme.timezone = "Asia/Kathmandu"
    acme.save()
    rows = _ingest(acme, n=700, seed=9)
    for zone, start, end in (
        # mid-quarter edges
        (ZoneInfo("Asia/Kathmandu"), SPAN_START + timedelta(hours=2, minutes=4),
         SPAN_START + timedelta(days=2, hours=7, minutes=52)),
        # across Berlin's change back to CET (2026-10-25): two offsets, ranked per stretch
        (ZoneInfo("Europe/Berlin"), datetime(2026, 10, 23, 7, 3, tzinfo=UTC),
         datetime(2026, 10, 27, 9, 10, tzinfo=UTC)),
    ):  # fmt: skip
        q = UsageQuery(account=acme, start=start, end=end, zone=zone, **filters)
        per_hour = defaultdict(lambda: [0, 0])
        for r in rows:
            if start <= r["timestamp"] < end and (not filters or r["model"] in filters["models"]):
                figures = per_hour[hour_start(r["timestamp"], zone)]
                figures[0] += 1
                figures[1] += r["total_tokens"]
        expected = sorted(((h, *v) for h, v in per_hour.items()), key=lambda item: (-item[1], item[0]))[:5]
        got = [(b.start, b.total.requests, b.total.total_tokens) for b in busiest_hours(q, n=5)]
        assert got == expected
        assert all(b.start.astimezone(zone).minute == 0 for b in busiest_hours(q, n=5))


def test_offset_stretches_cut_at_dst_changes():
    zone = ZoneInfo("Europe/Berlin")
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    assert offset_stretches(start, end, zone) == [
        (start, datetime(2026, 3, 29, 1, tzinfo=UTC), 3600),
        (datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC), 7200),
        (datetime(2026, 10, 25, 1, tzinfo=UTC), end, 3600),
    ]
    kathmandu = offset_stretches(start, end, ZoneInfo("Asia/Kathmandu"))
    assert kathmandu == [(start, end, 20700)]


@pytest.mark.django_db
def test_heatmap_across_a_dst_change_matches_raw(acme):
    acme.timezone = "Europe/Berlin"
    acme.save()
    rows = _ingest(acme, n=500, seed=13)
    zone = ZoneInfo("Europe/Berlin")
    start, end = SPAN_START + timedelta(minutes=1), SPAN_START + timedelta(days=14)
    grid = [[0] * 24 for _ in range(7)]
    for r in rows:
        if start <= r["timestamp"] < end:
            local = r["timestamp"].astimezone(zone)
            grid[local.weekday()][local.hour] += 1
    assert heatmap(UsageQuery(account=acme, start=start, end=end, zone=zone)) == grid
    assert heatmap(UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("America/St_Johns"))) == [
        [sum(1 for r in rows if start <= r["timestamp"] < end
             and (r["timestamp"].astimezone(ZoneInfo("America/St_Johns")).weekday(),
                  r["timestamp"].astimezone(ZoneInfo("America/St_Johns")).hour) == (d, h)) for h in range(24)]
        for d in range(7)
    ]  # fmt: skip


def _burst(account, minute, model, n, tokens, prefix):
    ingest_records(
        account=account,
        records=[
            {"request_id": f"{prefix}{i}", "timestamp": (minute + timedelta(seconds=i)).isoformat(), "model": model,
             "status": "success", "prompt_tokens": tokens, "completion_tokens": 0, "api_key": "key-a"}
            for i in range(n)
        ],
    )  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("days", "batch", "rounds", "totals_from"),
    [(4, 48, 8, 3), (1, 1, 1, 3), (1, 1, 30, 3), (9, 1, 0, 3), (1, 1, 8, 2)],
)
def test_peak_minute_of_several_values_counts_the_union(acme, monkeypatch, days, batch, rounds, totals_from):
    """(1, 1, 1): one day's slots bounded and one slot counted again, then the rest of the
    day, then the rest of the range; (1, 1, 30): 1, 2, 4 ... days and one slot per round;
    (9, 1, 0): the raw rows of the whole range at once; (1, 1, 8, 2): two values' days and
    slots also bounded by the account's own busiest minutes, as for three or more."""
    import analytics.usage

    monkeypatch.setattr(analytics.usage.peaks, "_PEAK_DAYS", days)
    monkeypatch.setattr(analytics.usage.peaks, "_PEAK_BATCH", batch)
    monkeypatch.setattr(analytics.usage.peaks, "_MAX_PEAK_ROUNDS", rounds)
    monkeypatch.setattr(analytics.usage.peaks, "_TOTALS_FROM_VALUES", totals_from)
    acme.timezone = "Asia/Kathmandu"
    acme.save()
    _ingest(acme, n=300, seed=21)
    together = SPAN_START.replace(second=0) + timedelta(days=3, minutes=30)
    _burst(acme, together, "llama", 4, 100, "b1-")
    _burst(acme, together, "gpt-4o", 3, 100, "b2-")  # same minute: 7 requests of either model
    apart = SPAN_START.replace(second=0) + timedelta(days=5, minutes=31)
    _burst(acme, apart, "llama", 5, 1000, "b3-")
    _burst(acme, apart + timedelta(minutes=1), "gpt-4o", 5, 1000, "b4-")  # same quarter, other minute
    start, end = SPAN_START + timedelta(hours=1, minutes=2), SPAN_START + timedelta(days=9)
    # Busier minutes of one model outside the range, on its first and last UTC day: no bound
    # may be taken from them.
    _burst(acme, start.replace(minute=0, second=0), "llama", 9, 5000, "b5-")
    _burst(acme, end.replace(second=0) + timedelta(minutes=20), "gpt-4o", 9, 5000, "b6-")
    rows = list(RequestLog.objects.filter(account=acme).values())
    for filters in ({"models": ("llama", "gpt-4o")}, {"models": ("llama",)}, {"api_keys": ("key-a",)},
                    {"statuses": ("success",)}, {"models": ("llama", "gpt-4o"), "statuses": ("success",)}):  # fmt: skip
        q = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("Asia/Kathmandu"), **filters)
        per_minute = defaultdict(lambda: [0, 0])
        for r in _expected_rows(rows, q):
            minute = r["timestamp"].replace(second=0, microsecond=0)
            per_minute[minute][0] += 1
            per_minute[minute][1] += r["total_tokens"]
        expected = (max(v[0] for v in per_minute.values()), max(v[1] for v in per_minute.values()))
        found = peak_minute(q)
        assert found == expected, filters
        assert [type(v) for v in found] == [int, int], filters  # not a float bound (JSON "5000.0")
    both = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("UTC"), models=("llama", "gpt-4o"))
    assert peak_minute(both) == (7, 5000)


def _expected_rows(rows, q):
    return [
        r for r in rows
        if q.start <= r["timestamp"] < q.end
        and (not q.models or r["model"] in q.models)
        and (not q.statuses or r["status"] in q.statuses)
        and (not q.api_keys or r["api_key"] in q.api_keys)
    ]  # fmt: skip


@pytest.mark.django_db
def test_slots_before_the_slices_were_complete_are_read_raw(acme):
    """An account rolled up before slices existed (migration 0004 sets slices_since)."""
    from analytics.models import RollupState, UsageSlice

    acme.timezone = "Asia/Kolkata"
    acme.save()
    rows = _ingest(acme, n=500, seed=17)
    since = SPAN_START + timedelta(days=6, hours=3, minutes=10)
    UsageSlice.objects.filter(account=acme, start__lt=since).delete()
    RollupState.objects.filter(account=acme).update(slices_since=since)
    start, end = SPAN_START + timedelta(hours=2), SPAN_START + timedelta(days=11)
    q = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("Europe/Berlin"), bucket="day",
                   group_by=("model",))  # fmt: skip
    assert [piece.source for piece in plan(q)] == ["raw", "slice", "raw"]
    _same(_actual(q), _expected(rows, q))
    hourly = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("Asia/Kolkata"), models=("llama",))
    grid = [[0] * 24 for _ in range(7)]
    for r in _expected_rows(rows, hourly):
        local = r["timestamp"].astimezone(hourly.zone)
        grid[local.weekday()][local.hour] += 1
    assert heatmap(hourly) == grid

    # A rebuild reaching back past slices_since fills the slices and moves it.
    call_command("rebuild_rollups", "--account", acme.slug, "--start", "2026-10-01", "--end", "2026-11-10",
                 "--past-retention")  # fmt: skip
    assert RollupState.objects.get(account=acme).slices_since < SPAN_START
    assert plan(UsageQuery(**{**q.__dict__, "account": type(acme).objects.get(pk=acme.pk)}))[1].source == "slice"
    assert sum(UsageSlice.objects.filter(account=acme, dimension=1).values_list("requests", flat=True)) == len(rows)


@pytest.mark.django_db
def test_slots_before_the_key_slices_were_complete_are_read_raw(acme):
    """An account rolled up before API-key slices existed (migration 0005 sets
    key_slices_since); the model and status slices stay in use meanwhile."""
    from analytics.models import RollupState, UsageSlice

    rows = _ingest(acme, n=500, seed=19)
    since = SPAN_START + timedelta(days=4, hours=7, minutes=40)
    UsageSlice.objects.filter(account=acme, dimension=2, start__lt=since).delete()
    RollupState.objects.filter(account=acme).update(key_slices_since=since)
    start, end = SPAN_START + timedelta(hours=2), SPAN_START + timedelta(days=11)
    by_key = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("Asia/Kathmandu"), bucket="day",
                        group_by=("api_key",))  # fmt: skip
    assert [piece.source for piece in plan(by_key)] == ["raw", "slice", "raw"]
    assert timedelta(0) <= plan(by_key)[1].start - since < timedelta(minutes=15)  # the next whole quarter
    _same(_actual(by_key), _expected(rows, by_key))
    by_model = UsageQuery(**{**by_key.__dict__, "group_by": ("model",)})
    assert [piece.source for piece in plan(by_model)] == ["raw", "slice", "raw"]
    assert plan(by_model)[1].start < since
    one_key = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("Asia/Kathmandu"), api_keys=("key-b",))
    expected = defaultdict(int)
    for r in _expected_rows(rows, one_key):
        expected[r["timestamp"].replace(second=0, microsecond=0)] += 1
    assert peak_minute(one_key)[0] == max(expected.values())

    call_command("rebuild_rollups", "--account", acme.slug, "--start", "2026-10-01", "--end", "2026-11-10",
                 "--past-retention")  # fmt: skip
    assert RollupState.objects.get(account=acme).key_slices_since < SPAN_START
    rebuilt = UsageQuery(**{**by_key.__dict__, "account": type(acme).objects.get(pk=acme.pk)})
    assert [piece.source for piece in plan(rebuilt)] == ["raw", "slice", "raw"]
    assert plan(rebuilt)[1].start < since
    keyed = UsageSlice.objects.filter(account=acme, dimension=2).values_list("requests", flat=True)
    assert sum(keyed) == len(rows)


@pytest.mark.django_db
@pytest.mark.parametrize("max_slots", [3, 200])
@pytest.mark.parametrize("filters", [{}, {"models": ("llama",)}])
def test_top_requests_with_flat_prices_tied_in_many_slots(acme, monkeypatch, filters, max_slots):
    """Every request costs the same: more slots reach the threshold than the narrowing
    lists (max_slots=3: the threshold alone narrows) or not (200: per-slot windows)."""
    import analytics.usage

    monkeypatch.setattr(analytics.usage.top, "_MAX_SLOTS", max_slots)
    rng = random.Random(4)
    records = [
        {"request_id": f"flat{i}", "timestamp": (SPAN_START + timedelta(minutes=37 * i)).isoformat(),
         "model": rng.choice(["llama", "gpt-4o"]), "status": "success", "prompt_tokens": 10,
         "completion_tokens": 5, "cost": "0.002" if i % 7 else "0.001"}
        for i in range(120)
    ]  # fmt: skip
    ingest_records(account=acme, records=records)
    rows = list(RequestLog.objects.filter(account=acme).values())
    start, end = SPAN_START + timedelta(minutes=5), SPAN_START + timedelta(days=3)
    q = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("Asia/Kolkata"), **filters)
    chosen = sorted(_expected_rows(rows, q), key=lambda r: (r["cost"], r["timestamp"]), reverse=True)
    assert [r["request_id"] for r in top_requests(q, n=10)] == [r["request_id"] for r in chosen[:10]]


@pytest.mark.django_db
def test_whole_hours_read_from_hour_rows_and_cut_hours_from_their_quarters(acme):
    """Unfiltered figures in another zone read the hour rows; in a zone off the whole hour
    the hours a local midnight cuts come from their quarters, and hourly buckets there from
    quarters alone. Every split agrees with the raw rows, the operator's view too."""
    acme.timezone = "Europe/Berlin"
    acme.save()
    rows = _ingest(acme, n=700, seed=23)
    start = SPAN_START + timedelta(hours=5, minutes=22)
    end = SPAN_START + timedelta(days=SPAN_DAYS - 1, hours=3, minutes=4)

    def sources(q):
        return [(piece.source, piece.cut) for piece in plan(q)]

    nepal = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("Asia/Kathmandu"), bucket="day")
    assert ("hour", False) in sources(nepal) and ("quarter", True) in sources(nepal)
    _same(_actual(nepal), _expected(rows, nepal))
    weeks = UsageQuery(**{**nepal.__dict__, "zone": ZoneInfo("Asia/Kolkata"), "bucket": "week"})
    _same(_actual(weeks), _expected(rows, weeks))
    india_hours = UsageQuery(**{**nepal.__dict__, "zone": ZoneInfo("Asia/Kolkata"), "bucket": "hour",
                                "end": start + timedelta(days=2)})  # fmt: skip
    assert "hour" not in {source for source, _cut in sources(india_hours)}
    _same(_actual(india_hours), _expected(rows, india_hours))
    tokyo_hours = UsageQuery(**{**india_hours.__dict__, "zone": ZoneInfo("Asia/Tokyo")})
    assert ("hour", None) in sources(tokyo_hours)
    _same(_actual(tokyo_hours), _expected(rows, tokyo_hours))
    everyone = UsageQuery(**{**nepal.__dict__, "account": all_accounts()})
    assert ("hour", False) in sources(everyone)
    _same(_actual(everyone), _expected(rows, everyone))
    # The busiest minute and the heatmap from hour rows (Tokyo is on the whole hour).
    per_minute = defaultdict(int)
    grid = [[0] * 24 for _ in range(7)]
    for r in _expected_rows(rows, tokyo_hours):
        per_minute[r["timestamp"].replace(second=0, microsecond=0)] += 1
        local = r["timestamp"].astimezone(tokyo_hours.zone)
        grid[local.weekday()][local.hour] += 1
    assert peak_minute(tokyo_hours)[0] == max(per_minute.values())
    assert heatmap(tokyo_hours) == grid


def test_totals_fields_are_the_measures_in_order():
    from analytics.measures import MEASURES
    from analytics.usage import Totals

    assert tuple(Totals.__dataclass_fields__) == MEASURES  # Totals.from_values relies on it


@pytest.mark.django_db
def test_whole_months_read_from_month_rows(acme):
    """Figures for a whole range or by month read whole local months from the month rows
    (the daily rows summed), the rest from days, slices and raw rows, and still agree."""
    from analytics.models import MONTHLY, Projection, UsageDay

    acme.timezone = "Asia/Kathmandu"
    acme.save()
    rows = _ingest(acme, n=1200, seed=29, start=datetime(2026, 8, 20, 3, 4, 5, tzinfo=UTC), days=100)
    start, end = datetime(2026, 8, 25, 11, 7, tzinfo=UTC), datetime(2026, 11, 26, 9, 41, tzinfo=UTC)
    zone = ZoneInfo("Asia/Kathmandu")
    cases = [
        UsageQuery(account=acme, start=start, end=end, zone=zone, group_by=("api_key",), models=("llama",)),
        UsageQuery(account=acme, start=start, end=end, zone=zone, bucket="month", group_by=("model",)),
        UsageQuery(account=acme, start=start, end=end, zone=zone, bucket="month"),
        UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo("UTC"), group_by=("error_code",)),
    ]
    for q in cases:
        months = [piece for piece in plan(q) if piece.source == "day" and piece.projection >= MONTHLY]
        assert [(m.first_day, m.last_day) for m in months] == [(date(2026, 9, 1), date(2026, 10, 31))]
        _same(_actual(q), _expected(rows, q))
    by_day = UsageQuery(**{**cases[1].__dict__, "bucket": "day"})
    assert all(piece.projection < MONTHLY for piece in plan(by_day) if piece.source == "day")
    # Month rows are the days summed: September's full rows add up to its raw rows.
    september = UsageDay.objects.filter(account=acme, projection=Projection.FULL_MONTH, day=date(2026, 9, 1))
    raw = [r for r in rows if r["timestamp"].astimezone(zone).date().month == 9]
    assert sum(september.values_list("requests", flat=True)) == len(raw)


SHIFTED_CASES = [
    # viewer zone, bucket, group_by, filters: one sliced dimension in another zone's days
    ("Asia/Tokyo", "day", (), {"models": ("gpt-4o",)}),
    ("Asia/Kathmandu", "day", ("model",), {"models": ("llama", "gpt-4o")}),
    ("America/New_York", "day", ("api_key",), {}),  # its DST change a week after Berlin's
    ("Pacific/Auckland", "day", ("status",), {}),  # about 12 hours off: edges near two midnights
    ("Pacific/Chatham", "week", ("model",), {}),
    ("America/St_Johns", "week", (), {"statuses": ("error",)}),
    ("Asia/Kolkata", "month", ("api_key",), {"api_keys": ("key-b",)}),
]


@pytest.mark.django_db
@pytest.mark.parametrize("account_zone", ["UTC", "Europe/Berlin", "Asia/Kathmandu"])
def test_another_zones_days_from_the_daily_rows_less_and_plus_slices(acme, account_zone):
    """sums_only: each bucket edge moves to the rows' nearest midnight, the slices between
    are subtracted or added; the sums must still be those of the raw rows."""
    from analytics.usage import reads_shifted_days

    acme.timezone = account_zone
    acme.save()
    rows = _ingest(acme, n=1200, seed=23)
    ranges = [
        # Odd edges: mid-quarter, over both DST changes.
        (SPAN_START + timedelta(days=1, hours=3, minutes=7, seconds=5), SPAN_START + timedelta(days=14, minutes=41)),
        # A first bucket of a few minutes, a last one shorter than the distance to a midnight.
        (datetime(2026, 10, 20, 10, 55, tzinfo=UTC), datetime(2026, 10, 29, 11, 20, 30, tzinfo=UTC)),
    ]
    for start, end in ranges:
        for zone, bucket, group_by, filters in SHIFTED_CASES:
            q = UsageQuery(account=acme, start=start, end=end, zone=ZoneInfo(zone), bucket=bucket,
                           group_by=group_by, sums_only=True, **filters)  # fmt: skip
            shifted = zone != account_zone
            assert reads_shifted_days(q) == shifted
            _same(_actual(q), _expected(rows, q))
            maxima = [t.max_total_tokens for bucket in usage(q) for t in bucket.groups.values()]
            assert maxima and all((value is None) == shifted for value in maxima)


@pytest.mark.django_db
def test_another_zones_days_read_raw_rows_before_the_slices_were_complete(acme):
    from analytics.models import RollupState, UsageSlice

    rows = _ingest(acme, n=700, seed=29)
    since = SPAN_START + timedelta(days=5, hours=7, minutes=30)
    UsageSlice.objects.filter(account=acme, start__lt=since).delete()
    RollupState.objects.filter(account=acme).update(slices_since=since)
    q = UsageQuery(account=acme, start=SPAN_START + timedelta(hours=5), end=SPAN_START + timedelta(days=12),
                   zone=ZoneInfo("Asia/Tokyo"), bucket="day", group_by=("model",), sums_only=True)  # fmt: skip
    _same(_actual(q), _expected(rows, q))
