"""GET /api/v1/usage against rows ingested here: every bucket's figures equal sums over the raw
rows computed in the test with its own bucket boundaries (found by walking the range in
15-minute steps and asking the zone for local midnight), in zones with half- and
quarter-hour offsets and over Europe/Berlin's DST change."""

import random
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from analytics import api as usage_api
from console.models import ApiToken
from logs.guard import allow_log_writes
from logs.ingest.services import ingest_records
from logs.models import RequestLog
from logs.selectors import QueryTimeout

URL = "/api/v1/usage"
ZONES = ("Asia/Kolkata", "Asia/Kathmandu", "Europe/Berlin")
# Data from 2026-10-22 to 2026-10-29 (UTC): Berlin leaves summer time on 2026-10-25.
DATA_START = datetime(2026, 10, 22, tzinfo=UTC)
DATA_DAYS = 7
MEASURE_KEYS = {"requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "unpriced_requests"}


def _edge_times() -> list[datetime]:
    """A second before, at and a second after every local midnight of each zone."""
    moments = []
    for name in ZONES:
        zone = ZoneInfo(name)
        for offset in range(DATA_DAYS + 1):
            midnight = datetime.combine(date(2026, 10, 22) + timedelta(days=offset), time(0), tzinfo=zone)
            for delta in (-1, 0, 1):
                moment = midnight.astimezone(UTC) + timedelta(seconds=delta)
                if DATA_START <= moment < DATA_START + timedelta(days=DATA_DAYS):
                    moments.append(moment)
    return moments


def _records(n=500, *, seed=3, prefix="u", keys=("key-a", "key-b", "")):
    rng = random.Random(seed)
    moments = _edge_times()
    moments += [DATA_START + timedelta(seconds=rng.randrange(0, DATA_DAYS * 86400)) for _ in range(n - len(moments))]
    records = []
    for i, moment in enumerate(moments):
        error = rng.random() < 0.25
        record = {
            "request_id": f"{prefix}{i}",
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
            "model": rng.choice(["gpt-4o", "claude-3", "llama"]),
            "status": "error" if error else "success",
            "prompt_tokens": rng.randrange(0, 3000),
            "completion_tokens": rng.randrange(0, 900),
            "api_key": rng.choice(keys),
        }
        if error:
            record["error_code"] = rng.choice(["rate_limited", "insufficient_balance"])
        if rng.random() < 0.8:  # the others stay unpriced: no price list in the test database
            record["cost"] = str(Decimal(rng.randrange(1, 10**8)) / Decimal(10**9))
        records.append(record)
    return records


def _ingest(account, records):
    result = ingest_records(account=account, records=records)
    assert result.accepted == len(records) and not result.rejected
    return list(RequestLog.objects.filter(account=account).values())


def _token(account, scope="read", created_by=None) -> str:
    return ApiToken.generate(account=account, scope=scope, created_by=created_by)[1]


def _get(client, token, **params):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get(URL, data=params, **headers)


def _ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def _edges(start: datetime, end: datetime, zone: ZoneInfo, bucket: str) -> list[tuple[datetime, datetime]]:
    """Bucket boundaries found independently of the engine, the first and last cut to the range."""

    def is_boundary(moment):
        local = moment.astimezone(zone)
        if local.minute != 0:
            return False
        if bucket == "hour":
            return True
        return local.hour == 0 and (
            bucket == "day" or (bucket == "week" and local.weekday() == 0) or (bucket == "month" and local.day == 1)
        )

    points = [start.astimezone(UTC)]  # the first bucket is cut to the range
    moment = points[0].replace(minute=points[0].minute // 15 * 15, second=0, microsecond=0)
    while moment < end:
        if moment > start and is_boundary(moment):
            points.append(moment)
        moment += timedelta(minutes=15)
    return list(zip(points, [*points[1:], end], strict=True))


def _expected(rows, edges, group_by=(), **filters):
    out = [defaultdict(lambda: [0, 0, 0, 0, 0, Decimal(0), 0]) for _ in edges]
    for row in rows:
        if any(values and row[column] not in values for column, values in filters.items()):
            continue
        for index, (lower, upper) in enumerate(edges):
            if lower <= row["timestamp"] < upper:
                figures = out[index][tuple(row[name] for name in group_by)]
                figures[0] += 1
                figures[1] += row["status"] == "error"
                figures[2] += row["prompt_tokens"]
                figures[3] += row["completion_tokens"]
                figures[4] += row["total_tokens"]
                figures[5] += row["cost"] or 0
                figures[6] += row["cost"] is None
    return [dict(bucket) for bucket in out]


def _check(body, edges, expected, zone, group_by=()):
    buckets = body["buckets"]
    assert [(b["start"], b["end"]) for b in buckets] == [
        (lower.astimezone(zone).isoformat(), upper.astimezone(zone).isoformat()) for lower, upper in edges
    ]
    for bucket, want in zip(buckets, expected, strict=True):
        got = {}
        for result in bucket["results"]:
            assert set(result) == set(group_by) | MEASURE_KEYS  # unpriced_requests always said, 0 included
            key = tuple(result[name] or "" for name in group_by)  # null api_key / error_code: none sent
            assert key not in got
            got[key] = result
        assert got.keys() == want.keys()
        for key, figures in want.items():
            result = got[key]
            assert [
                result[m] for m in ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens")
            ] == (figures[:5])
            assert result["unpriced_requests"] == figures[6]
            if figures[6] == figures[0]:
                assert result["cost"] is None  # wholly unpriced: not "0"
                continue
            cost = Decimal(result["cost"])
            # A log record's format: at most 12 places, no trailing zeros, no exponent.
            assert re.fullmatch(r"\d+(\.\d{0,11}[1-9])?", result["cost"]), result["cost"]
            assert round(cost, 2) == round(figures[5], 2)  # to the cent
            if connection.vendor == "postgresql":
                assert cost == figures[5]  # numeric sums are exact
            else:
                assert abs(cost - figures[5]) < Decimal("1e-9")  # SQLite sums decimals as doubles


# --- Exact figures --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("zone_name", ZONES)
def test_day_buckets_equal_raw_sums_across_local_midnights(client, acme, zone_name):
    acme.timezone = zone_name
    acme.save()
    rows = _ingest(acme, _records())
    token = _token(acme)
    zone = ZoneInfo(zone_name)
    start, end = datetime(2026, 10, 21, tzinfo=zone), datetime(2026, 10, 31, tzinfo=zone)
    edges = _edges(start, end, zone, "day")
    assert len(edges) == 10  # 2026-10-21 .. 2026-10-30, the first and the last two empty

    body = _ok(_get(client, token, start="2026-10-21", end="2026-10-31", bucket="day"))
    assert body["timezone"] == zone_name and body["bucket"] == "day"
    expected = _expected(rows, edges)
    assert expected[0] == {} and expected[-1] == {} and all(expected[1:7])
    _check(body, edges, expected, zone)
    assert body["buckets"][0]["results"] == [] and body["buckets"][-1]["results"] == []
    offset = {"Asia/Kolkata": "+05:30", "Asia/Kathmandu": "+05:45", "Europe/Berlin": "+02:00"}[zone_name]
    assert body["buckets"][1]["start"] == f"2026-10-22T00:00:00{offset}"

    # A second before local midnight counts for the day before, midnight itself for the day.
    midnight = datetime(2026, 10, 25, tzinfo=zone).astimezone(UTC)
    day = body["buckets"][4]
    assert day["start"].startswith("2026-10-25T00:00:00")
    inside = [r for r in rows if midnight <= r["timestamp"] < midnight + (edges[4][1] - edges[4][0])]
    assert any(r["timestamp"] == midnight for r in inside)
    assert day["results"][0]["requests"] == len(inside)

    for group_by, filters in [
        (("model",), {}),
        (("model", "api_key"), {}),
        (("status", "error_code"), {"model": ["gpt-4o", "llama"]}),
        (("api_key",), {"status": ["error"]}),
        ((), {"api_key": ["key-a"], "error_code": ["rate_limited"]}),
    ]:
        params = {"start": "2026-10-21", "end": "2026-10-31", "group_by": ",".join(group_by), **filters}
        body = _ok(_get(client, token, **params))
        _check(body, edges, _expected(rows, edges, group_by, **filters), zone, group_by)


@pytest.mark.django_db
def test_berlin_dst_day_has_25_hour_buckets_and_sums_match(client, acme):
    acme.timezone = "Europe/Berlin"
    acme.save()
    rows = _ingest(acme, _records(seed=8))
    token = _token(acme)
    zone = ZoneInfo("Europe/Berlin")

    body = _ok(_get(client, token, start="2026-10-25", end="2026-10-26", bucket="hour"))
    edges = _edges(datetime(2026, 10, 25, tzinfo=zone), datetime(2026, 10, 26, tzinfo=zone), zone, "hour")
    assert len(edges) == len(body["buckets"]) == 25
    starts = [b["start"] for b in body["buckets"]]
    assert "2026-10-25T02:00:00+02:00" in starts and "2026-10-25T02:00:00+01:00" in starts
    _check(body, edges, _expected(rows, edges), zone)
    body = _ok(_get(client, token, start="2026-10-25", end="2026-10-26", bucket="hour", group_by="model"))
    _check(body, edges, _expected(rows, edges, ("model",)), zone, ("model",))

    # The day bucket of the change is 25 hours long; a week from Monday.
    body = _ok(_get(client, token, start="2026-10-19", end="2026-11-02", bucket="week", group_by="status"))
    week_edges = _edges(datetime(2026, 10, 19, tzinfo=zone), datetime(2026, 11, 2, tzinfo=zone), zone, "week")
    assert [b["start"] for b in body["buckets"]] == ["2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00"]
    _check(body, week_edges, _expected(rows, week_edges, ("status",)), zone, ("status",))


@pytest.mark.django_db
def test_kathmandu_hours_and_another_zone_than_the_accounts(client, acme):
    acme.timezone = "Asia/Kolkata"
    acme.save()
    rows = _ingest(acme, _records(seed=5))
    token = _token(acme)
    zone = ZoneInfo("Asia/Kathmandu")
    # Hours of Kathmandu start at a quarter past the UTC hour; the range starts mid-hour.
    start = datetime(2026, 10, 24, 22, 37, 13, tzinfo=zone)
    end = datetime(2026, 10, 26, 3, 4, 59, 250000, tzinfo=zone)
    body = _ok(_get(client, token, start=start.isoformat(), end=end.isoformat(), bucket="hour", timezone=zone.key))
    edges = _edges(start, end, zone, "hour")
    assert body["buckets"][0]["start"] == "2026-10-24T22:37:13+05:45"  # cut to the range
    assert body["buckets"][1]["start"] == "2026-10-24T23:00:00+05:45"
    assert body["buckets"][-1]["end"] == "2026-10-26T03:04:59.250000+05:45"
    _check(body, edges, _expected(rows, edges), zone)
    body = _ok(_get(client, token, start=start.isoformat(), end=end.isoformat(), bucket="hour", timezone=zone.key,
                    group_by="status", model="llama"))  # fmt: skip
    _check(body, edges, _expected(rows, edges, ("status",), model=["llama"]), zone, ("status",))

    # Days of Kathmandu for an account whose daily rows are in Kolkata, grouped: raw rows.
    day_edges = _edges(datetime(2026, 10, 22, tzinfo=zone), datetime(2026, 10, 29, tzinfo=zone), zone, "day")
    for group_by in ((), ("api_key",)):
        body = _ok(
            _get(client, token, start="2026-10-22", end="2026-10-29", timezone=zone.key, group_by=",".join(group_by))
        )
        _check(body, day_edges, _expected(rows, day_edges, group_by), zone, group_by)


@pytest.mark.django_db
def test_month_buckets_and_repeated_filters(client, acme):
    acme.timezone = "Asia/Kolkata"
    acme.save()
    rows = _ingest(acme, _records(seed=9))
    token = _token(acme)
    zone = ZoneInfo("Asia/Kolkata")
    body = _ok(
        client.get(
            f"{URL}?start=2026-09-15&end=2026-12-01&bucket=month&model=gpt-4o&model=claude-3&group_by=model",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    )
    edges = _edges(datetime(2026, 9, 15, tzinfo=zone), datetime(2026, 12, 1, tzinfo=zone), zone, "month")
    assert [b["start"] for b in body["buckets"]] == [
        "2026-09-15T00:00:00+05:30",
        "2026-10-01T00:00:00+05:30",
        "2026-11-01T00:00:00+05:30",
    ]
    _check(body, edges, _expected(rows, edges, ("model",), model=["gpt-4o", "claude-3"]), zone, ("model",))


@pytest.mark.django_db
def test_unpriced_requests_only_where_there_are_some(client, acme):
    acme.timezone = "UTC"
    acme.save()
    base = datetime(2026, 11, 20, 10, tzinfo=UTC)
    records = [
        {"request_id": "p1", "timestamp": base.isoformat(), "model": "priced", "status": "success",
         "prompt_tokens": 10, "completion_tokens": 5, "cost": "0.000027"},
        {"request_id": "p2", "timestamp": (base + timedelta(hours=1)).isoformat(), "model": "priced",
         "status": "success", "prompt_tokens": 1, "completion_tokens": 1, "cost": "1.5"},
        {"request_id": "m1", "timestamp": base.isoformat(), "model": "mixed", "status": "success",
         "prompt_tokens": 7, "completion_tokens": 3, "cost": "0.25"},
        {"request_id": "m2", "timestamp": base.isoformat(), "model": "mixed", "status": "error",
         "prompt_tokens": 2, "completion_tokens": 0, "error_code": "timeout"},
        {"request_id": "m3", "timestamp": base.isoformat(), "model": "mixed", "status": "success",
         "prompt_tokens": 4, "completion_tokens": 4},
    ]  # fmt: skip
    _ingest(acme, records)
    body = _ok(_get(client, _token(acme), start="2026-11-20", end="2026-11-21", group_by="model"))
    assert body["buckets"] == [
        {
            "start": "2026-11-20T00:00:00+00:00",
            "end": "2026-11-21T00:00:00+00:00",
            "results": [
                {"model": "mixed", "requests": 3, "errors": 1, "prompt_tokens": 13, "completion_tokens": 7,
                 "total_tokens": 20, "cost": "0.25", "unpriced_requests": 2},
                {"model": "priced", "requests": 2, "errors": 0, "prompt_tokens": 11, "completion_tokens": 6,
                 "total_tokens": 17, "cost": "1.500027", "unpriced_requests": 0},
            ],
        }
    ]  # fmt: skip
    # No group: one result per bucket with no group keys at all; api_key null when none was sent.
    body = _ok(_get(client, _token(acme), start="2026-11-20", end="2026-11-21", group_by="api_key,error_code"))
    keys = {(r["api_key"], r["error_code"]): r["requests"] for r in body["buckets"][0]["results"]}
    assert keys == {(None, None): 4, (None, "timeout"): 1}


@pytest.mark.django_db
def test_purged_raw_rows_still_count(client, acme):
    acme.timezone = "Asia/Kolkata"
    acme.save()
    rows = _ingest(acme, _records(seed=4))
    token = _token(acme)
    zone = ZoneInfo("Asia/Kolkata")
    params = {"start": "2026-10-22", "end": "2026-10-29", "group_by": "model"}
    before = _ok(_get(client, token, **params))
    before_plain = _ok(_get(client, token, start="2026-10-22", end="2026-10-29"))
    with allow_log_writes("purge"), connection.cursor() as cursor:  # what the retention purge does: the raw rows go
        cursor.execute(f"DELETE FROM {RequestLog._meta.db_table} WHERE account_id = %s", [acme.pk])
    assert not RequestLog.objects.filter(account=acme).exists()

    edges = _edges(datetime(2026, 10, 22, tzinfo=zone), datetime(2026, 10, 29, tzinfo=zone), zone, "day")
    after = _ok(_get(client, token, **params))
    assert after == before
    # Whole local days come from the daily rollups: equal to the sums of the rows deleted.
    _check(after, edges, _expected(rows, edges, ("model",)), zone, ("model",))
    assert _ok(_get(client, token, start="2026-10-22", end="2026-10-29")) == before_plain
    assert sum(b["results"][0]["requests"] for b in before_plain["buckets"] if b["results"]) == len(
        [r for r in rows if edges[0][0] <= r["timestamp"] < edges[-1][1]]
    )


# --- Defaults ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_defaults_are_the_last_7_local_days_by_day_in_the_accounts_zone(client, acme):
    acme.timezone = "Asia/Kathmandu"
    acme.save()
    zone = ZoneInfo("Asia/Kathmandu")
    now = timezone.now()
    today = now.astimezone(zone).date()
    # A minute ago, but not before local midnight (a run at 00:00:30 in Kathmandu).
    moment = max(now - timedelta(minutes=1), datetime.combine(today, time(0), tzinfo=zone))
    ingest_records(
        account=acme,
        records=[{"request_id": "now", "timestamp": moment.isoformat(), "model": "m", "status": "success",
                  "prompt_tokens": 3}],
    )  # fmt: skip
    body = _ok(_get(client, _token(acme)))
    assert body["bucket"] == "day" and body["timezone"] == "Asia/Kathmandu" and body["group_by"] == []
    assert body["start"] == datetime.combine(today - timedelta(days=6), time(0), tzinfo=zone).isoformat()
    assert len(body["buckets"]) == 7
    assert [b["start"][:10] for b in body["buckets"]] == [str(today - timedelta(days=6 - i)) for i in range(7)]
    assert all(b["start"].endswith("+05:45") for b in body["buckets"])
    assert body["buckets"][-1]["results"][0]["requests"] == 1  # the last bucket ends now
    assert datetime.fromisoformat(body["buckets"][-1]["end"]) >= now


# --- Bad input ---------------------------------------------------------------------------------

BAD_PARAMS = [
    ({"bucket": "minute"}, "bucket"),
    ({"group_by": "model,colour"}, "group_by"),
    ({"group_by": "model,model"}, "group_by"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"start": "yesterday"}, "start"),
    ({"end": "2026-13-40"}, "end"),
    ({"start": "2026-11-20", "end": "2026-11-20"}, "end"),
    ({"start": "2026-11-21", "end": "2026-11-20"}, "end"),
    ({"start": "1900-01-01"}, "start"),
    ({"start": "2026-01-01", "end": "2026-02-02", "bucket": "hour"}, "bucket"),
    ({"start": "2024-01-01", "end": "2025-02-05", "bucket": "day"}, "bucket"),
    ({"start": "2020-01-01", "end": "2026-01-01", "bucket": "week"}, "bucket"),
    ({"start": "2020-01-01", "end": "2026-01-01", "bucket": "month"}, "bucket"),
    ({"status": "ok"}, "status"),
    ({"range": "2d"}, "range"),
    ({"q": "timeout"}, "q"),
    ({"ip": "10.0.0.1"}, "ip"),
    ({"model": ",".join(f"m{i}" for i in range(51))}, "model"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "param"), BAD_PARAMS)
def test_bad_parameters_answer_400_naming_them(client, acme, params, param):
    response = _get(client, _token(acme), **params)
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == [param] and errors[param][0]


@pytest.mark.django_db
def test_range_limits_allow_their_maximum(client, acme):
    token = _token(acme)
    assert (
        _get(client, token, start="2026-01-01T00:00:00Z", end="2026-02-01T00:00:00Z", bucket="hour").status_code == 200
    )
    assert len(_ok(_get(client, token, start="2025-01-01", end="2026-01-01", bucket="day"))["buckets"]) == 365
    body = _ok(_get(client, token, start="2021-01-01", end="2026-01-01", bucket="month", timezone="Asia/Kolkata"))
    assert len(body["buckets"]) == 60 and all(b["results"] == [] for b in body["buckets"])


@pytest.mark.django_db
def test_offsets_and_epochs_are_understood(client, acme):
    token = _token(acme)
    # An unencoded "+05:30" arrives as a space; epoch seconds are UTC.
    epoch = int(datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp())
    body = _ok(client.get(f"{URL}?start=2026-11-20T00:00:00+05:30&end={epoch}&bucket=hour",
                          HTTP_AUTHORIZATION=f"Bearer {token}"))  # fmt: skip
    assert body["start"] == "2026-11-19T18:30:00+00:00"  # shown in the account's zone, UTC
    assert body["end"] == "2026-11-20T12:00:00+00:00"
    assert len(body["buckets"]) == 18


@pytest.mark.django_db
def test_query_timeout_answers_422(client, acme, monkeypatch):
    def too_slow(query):
        raise QueryTimeout(QueryTimeout.message)

    monkeypatch.setattr(usage_api.engine, "usage", too_slow)
    response = _get(client, _token(acme), bucket="hour", group_by="model")
    assert response.status_code == 422
    assert response.json() == {"detail": QueryTimeout.message, "code": "query_timeout"}


# --- Tokens and tenancy ------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_token_sees_only_its_accounts_usage(client, acme, globex, charlie):
    acme.timezone = globex.timezone = "UTC"
    acme.save()
    globex.save()
    acme_rows = _ingest(acme, _records(200, seed=1, prefix="a"))
    globex_rows = _ingest(globex, _records(120, seed=2, prefix="g", keys=("globex-key",)))
    params = {"start": "2026-10-22", "end": "2026-10-29", "bucket": "week", "timezone": "UTC"}

    def requests(body):
        return sum(r["requests"] for b in body["buckets"] for r in b["results"])

    assert requests(_ok(_get(client, _token(globex), **params))) == len(globex_rows) == 120
    assert requests(_ok(_get(client, _token(acme), **params))) == len(acme_rows) == 200
    # Same request ids and models in both accounts: a key filter cannot reach the other's rows.
    assert requests(_ok(_get(client, _token(acme), api_key="globex-key", **params))) == 0
    by_key = _ok(_get(client, _token(globex), group_by="api_key", **params))
    assert {r["api_key"] for b in by_key["buckets"] for r in b["results"]} == {"globex-key"}

    # A read token made by a viewer of the account reads; an ingest token and no token do not.
    assert requests(_ok(_get(client, _token(acme, created_by=charlie), **params))) == 200
    response = _get(client, _token(acme, scope="ingest"), **params)
    assert response.status_code == 403 and "read" in response.json()["detail"]
    assert _get(client, None, **params).status_code == 401


@pytest.mark.django_db
def test_schema_documents_the_usage_endpoint(client):
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/usage"]["get"]
    params = {p["name"] for p in operation["parameters"]}
    assert params == {"start", "end", "range", "bucket", "group_by", "timezone", "model", "api_key", "status",
                      "error_code"}  # fmt: skip
    assert set(operation["responses"]) == {"200", "400", "401", "403", "422"}
    assert operation["security"] == [{"bearerAuth": []}]
