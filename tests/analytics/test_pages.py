"""The analytics page (/analytics/) through the Django test client, against ingested rows
(rollups exist only for ingested rows). Expected figures are summed here from the stored
raw rows, independently of analytics.usage."""

import csv
import html
import io
import itertools
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from analytics import reports
from logs.ingest.services import ingest_records
from logs.models import RequestLog
from logs.selectors import QueryTimeout

TABS = ("cost", "trend", "peak", "errors")


def _records(prefix: str, *, start: datetime, n: int, models: list[str], keys: list[str]) -> list[dict]:
    """n requests 37 minutes apart from `start`: every 4th an error, every 6th unpriced."""
    out = []
    for i in range(n):
        record = {
            "request_id": f"{prefix}-{i:03d}",
            "timestamp": (start + timedelta(minutes=37 * i)).isoformat(),
            "model": models[i % len(models)],
            "status": "error" if i % 4 == 0 else "success",
            "prompt_tokens": 100 + 7 * i,
            "completion_tokens": 20 + i,
            "api_key": keys[i % len(keys)],
        }
        if i % 6 != 5:
            record["cost"] = str(Decimal(i + 1) / Decimal(10_000) + Decimal("0.000000000017"))
        if record["status"] == "error":
            record["error_code"] = "rate_limited" if i % 8 == 0 else "timeout"
        out.append(record)
    return out


def _ingest(account, records):
    result = ingest_records(account=account, records=records)
    assert (result.accepted, result.rejected) == (len(records), [])
    return list(RequestLog.objects.filter(account=account).values())


def _csv(client, **params) -> list[dict]:
    response = client.get("/analytics/", {**params, "format": "csv"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.fixture
def data(acme, globex):
    """acme: 60 requests over the last ~37 hours; globex: its own models and keys."""
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=40)
    acme_rows = _ingest(acme, _records("acme", start=start, n=60, models=["gpt-4o", "claude-3"],
                                       keys=["team-a", "team-b", "team-c"]))  # fmt: skip
    _ingest(globex, _records("globex", start=start, n=30, models=["globex-secret-model"], keys=["globex-key"]))
    return acme_rows


@pytest.mark.django_db
@pytest.mark.parametrize("tab", TABS)
@pytest.mark.parametrize("user", ["alice", "charlie"])
def test_each_tab_renders_charts_for_members(client, request, data, tab, user):
    client.force_login(request.getfixturevalue(user))
    response = client.get("/analytics/", {"tab": tab, "range": "7d"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'aria-current="page">' + {"cost": "Cost", "trend": "Usage trend", "peak": "Peak time",
                                      "errors": "Error rate"}[tab] in body  # fmt: skip
    assert "data-figure=" in body and "vendor/plotly.min.js" in body and "js/analytics.js" in body
    # Every script and stylesheet comes from our own static files (no CDN).
    assert not re.findall(r'<(?:script|link)[^>]+(?:src|href)="(?!/static/)[^"]*"', body)
    charts = response.context["charts"]
    assert charts and all(c["figure"] is None or c["figure"]["data"] for c in charts)
    for chart in charts:  # every chart has its CSV link and its numbers
        assert f"chart={chart['table'].name}" in body
        assert f'data-table="{chart["table"].name}"' in body
    assert "globex" not in body


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client):
    response = client.get("/analytics/?tab=cost")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/analytics/")
    assert client.get("/analytics/", {"format": "csv", "chart": "cost_by_model"}).status_code == 302


@pytest.mark.django_db
def test_cost_by_model_csv_equals_sums_of_the_ingested_rows_and_hides_globex(client, alice, data):
    client.force_login(alice)
    expected = defaultdict(lambda: [Decimal(0), 0, 0])
    for row in data:
        expected[row["model"]][0] += row["cost"] or 0
        expected[row["model"]][1] += 1
        expected[row["model"]][2] += row["cost"] is None
    rows = _csv(client, tab="cost", range="7d", chart="cost_by_model")
    got = {r["model"]: [Decimal(r["cost"]), int(r["requests"]), int(r["unpriced"])] for r in rows}
    assert got == dict(expected)
    assert sum(v[1] for v in got.values()) == 60
    # Cost by key: the same money, and globex's key never shows.
    by_key = _csv(client, tab="cost", range="7d", chart="cost_by_key")
    assert sorted(r["api_key"] for r in by_key) == ["team-a", "team-b", "team-c"]
    assert sum(Decimal(r["cost"]) for r in by_key) == sum(v[0] for v in expected.values())

    # The page shows the total, cost per 1K priced requests and the unpriced note.
    response = client.get("/analytics/", {"tab": "cost", "range": "7d"})
    body = html.unescape(response.content.decode())
    total = sum((row["cost"] or 0 for row in data), Decimal(0))
    priced = sum(1 for row in data if row["cost"] is not None)
    assert f"${total:,.6f}".rstrip("0") in body
    assert f"${total * 1000 / priced:,.6f}".rstrip("0").rstrip(".") in body
    assert re.search(r"Unpriced</span>\s*<span class=\"stat-value\">10<", body)
    assert "globex" not in body


@pytest.mark.django_db
def test_globex_numbers_never_reach_acme(client, alice, bob, data):
    client.force_login(alice)
    acme_requests = sum(int(r["requests"]) for r in _csv(client, tab="trend", range="7d", chart="requests_over_time"))
    assert acme_requests == 60
    errors = _csv(client, tab="errors", range="7d", chart="errors_by_model")
    assert {r["model"] for r in errors} == {"gpt-4o", "claude-3"}
    heat = _csv(client, tab="peak", range="7d", chart="weekday_hour")
    assert sum(int(v) for r in heat for k, v in r.items() if k != "weekday") == 60
    client.force_login(bob)
    rows = _csv(client, tab="cost", range="7d", chart="cost_by_model")
    assert [(r["model"], r["requests"]) for r in rows] == [("globex-secret-model", "30")]
    body = client.get("/analytics/", {"tab": "errors", "range": "7d"}).content.decode()
    assert "gpt-4o" not in body and "team-a" not in body


@pytest.mark.django_db
def test_top_requests_link_to_their_log_detail(client, alice, data):
    client.force_login(alice)
    rows = _csv(client, tab="cost", range="7d", chart="top_requests")
    priced = sorted((r for r in data if r["cost"] is not None), key=lambda r: (-r["cost"], -r["timestamp"].timestamp()))
    assert [r["request_id"] for r in rows] == [r["request_id"] for r in priced[:10]]
    assert [Decimal(r["cost"]) for r in rows] == [r["cost"] for r in priced[:10]]
    body = client.get("/analytics/", {"tab": "cost", "range": "7d"}).content.decode()
    assert f'href="/logs/{priced[0]["request_id"]}/"' in body


@pytest.mark.django_db
def test_kathmandu_days_in_the_cost_by_day_csv(client, alice, acme):
    """Kathmandu is UTC+05:45: its midnight is 18:15 UTC. Rows at 18:10 and 18:20 UTC fall on
    different local days."""
    acme.timezone = "Asia/Kathmandu"
    acme.save()
    day = (timezone.now() - timedelta(days=4)).date()
    midnight_utc = datetime(day.year, day.month, day.day, 18, 15, tzinfo=UTC)  # local midnight of day + 1
    records = [
        {"request_id": "before", "timestamp": (midnight_utc - timedelta(minutes=5)).isoformat(), "model": "m",
         "status": "success", "prompt_tokens": 1, "completion_tokens": 1, "cost": "0.5", "api_key": "k"},
        {"request_id": "after", "timestamp": (midnight_utc + timedelta(minutes=5)).isoformat(), "model": "m",
         "status": "success", "prompt_tokens": 1, "completion_tokens": 1, "cost": "0.25", "api_key": "k"},
        {"request_id": "edge", "timestamp": midnight_utc.isoformat(), "model": "m",
         "status": "success", "prompt_tokens": 1, "completion_tokens": 1, "cost": "0.125", "api_key": "k"},
    ]  # fmt: skip
    _ingest(acme, records)
    client.force_login(alice)
    following = day + timedelta(days=1)
    rows = _csv(client, tab="cost", range="custom", start=day.isoformat(), end=(day + timedelta(days=3)).isoformat(),
                chart="cost_by_day")  # fmt: skip
    assert [r["start"] for r in rows] == [f"{day + timedelta(days=i)}T00:00:00+05:45" for i in range(4)]
    assert [Decimal(r["cost"]) for r in rows] == [Decimal("0.5"), Decimal("0.375"), 0, 0]
    assert [int(r["requests"]) for r in rows] == [1, 2, 0, 0]
    # The same range with a model filter reads the daily rows: same days, same money.
    rows = _csv(client, tab="cost", range="custom", start=day.isoformat(), end=following.isoformat(),
                chart="cost_by_day", model="m")  # fmt: skip
    assert [(r["start"], Decimal(r["cost"])) for r in rows] == [
        (f"{day}T00:00:00+05:45", Decimal("0.5")), (f"{following}T00:00:00+05:45", Decimal("0.375"))
    ]  # fmt: skip
    # In UTC (the viewer's zone, from the cookie) all three land on `day`.
    client.cookies["meterlog_tz"] = "UTC"
    rows = _csv(client, tab="cost", range="custom", start=day.isoformat(), end=following.isoformat(),
                chart="cost_by_day", zone="viewer")  # fmt: skip
    assert [(r["start"], Decimal(r["cost"])) for r in rows] == [
        (f"{day}T00:00:00+00:00", Decimal("0.875")), (f"{following}T00:00:00+00:00", Decimal(0))
    ]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"range": "custom", "start": "2026-13-01", "end": "2026-11-02"}, "Enter a valid date."),
        ({"range": "custom", "start": "2026-11-10", "end": "2026-11-02"}, "The end date is before the start date."),
        ({"range": "custom", "start": "2023-01-01", "end": "2026-11-02"}, "A range can span at most 2 years"),
        ({"range": "custom", "start": "9999-12-31", "end": "9999-12-31"}, "Pick a date between 2000 and 2100."),
        ({"range": "custom", "end": "2026-11-02"}, "Pick a start date for a custom range."),
        ({"range": "1y"}, "Select a valid choice."),
        ({"status": "weird"}, "Select a valid choice."),
    ],
)
def test_bad_filters_answer_400_with_a_message(client, alice, params, message):
    client.force_login(alice)
    for tab in TABS:
        response = client.get("/analytics/", {**params, "tab": tab})
        assert response.status_code == 400
        assert message in html.unescape(response.content.decode())
    response = client.get("/analytics/", {**params, "chart": "cost_by_day", "format": "csv"})
    assert response.status_code == 400 and message in response.content.decode()


@pytest.mark.django_db
def test_unknown_chart_in_a_csv_link_is_a_400(client, alice, data):
    client.force_login(alice)
    response = client.get("/analytics/", {"tab": "cost", "chart": "nope", "format": "csv"})
    assert response.status_code == 400
    assert "cost_by_model" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("tab", TABS)
def test_empty_range_shows_a_message_not_charts(client, alice, tab):
    client.force_login(alice)
    response = client.get("/analytics/", {"tab": tab, "range": "30d"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "No requests in this range." in body
    assert "data-figure=" not in body and "plotly.min.js" not in body


@pytest.mark.django_db
def test_a_query_timeout_is_a_message_not_a_500(client, alice, data, monkeypatch):
    def timed_out(*args, **kwargs):
        raise QueryTimeout(QueryTimeout.message)

    monkeypatch.setattr(reports, "usage", timed_out)
    client.force_login(alice)
    response = client.get("/analytics/", {"tab": "trend"})
    assert response.status_code == 200
    assert "The search took too long." in response.content.decode()
    response = client.get("/analytics/", {"tab": "trend", "chart": "requests_over_time", "format": "csv"})
    assert response.status_code == 503 and b"took too long" in response.content


@pytest.mark.django_db
def test_trend_lays_the_previous_period_on_the_current_buckets(client, alice, acme):
    zone = ZoneInfo("UTC")
    today = timezone.now().astimezone(zone).date()
    first = today - timedelta(days=6)

    def at(day, hour):
        return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()

    base = {"model": "m", "status": "success", "prompt_tokens": 10, "completion_tokens": 5, "api_key": "k",
            "cost": "0.3"}  # fmt: skip
    records = [{**base, "request_id": f"now-{i}", "timestamp": at(first + timedelta(days=i), 1)} for i in range(3)]
    # The previous 7 days: 2 requests on the day a week before `first`.
    records += [
        {**base, "request_id": f"before-{i}", "timestamp": at(first - timedelta(days=7), 2 + i)} for i in range(2)
    ]
    _ingest(acme, records)
    client.force_login(alice)
    rows = _csv(client, tab="trend", range="7d", chart="requests_over_time")
    assert [r["start"][:10] for r in rows] == [str(first + timedelta(days=i)) for i in range(7)]
    assert [int(r["requests"]) for r in rows] == [1, 1, 1, 0, 0, 0, 0]
    assert [int(r["previous_requests"]) for r in rows] == [2, 0, 0, 0, 0, 0, 0]
    tokens = _csv(client, tab="trend", range="7d", chart="tokens_over_time")
    assert [(r["prompt_tokens"], r["completion_tokens"]) for r in tokens[:2]] == [("10", "5"), ("10", "5")]
    # The cost tab compares with the same 7 days: $0.90 against $0.60.
    stats = {s.label: s for s in client.get("/analytics/", {"range": "7d"}).context["report"].stats}
    assert (stats["Total cost"].value, stats["Total cost"].sub) == ("$0.90", "+50.0% vs previous period ($0.60)")


@pytest.mark.django_db
def test_peak_tab_busiest_hour_and_minute(client, alice, acme):
    now = timezone.now()
    anchor = (now - timedelta(days=2)).replace(hour=9, minute=30, second=0, microsecond=0, tzinfo=UTC)
    base = {"model": "m", "status": "success", "completion_tokens": 0, "api_key": "k"}
    records = [{**base, "request_id": f"burst-{i}", "timestamp": (anchor + timedelta(seconds=i)).isoformat(),
                "prompt_tokens": 100} for i in range(5)]  # fmt: skip
    calm = anchor + timedelta(hours=3)
    records += [{**base, "request_id": f"calm-{i}", "timestamp": (calm + timedelta(minutes=i * 7)).isoformat(),
                 "prompt_tokens": 10} for i in range(3)]  # fmt: skip
    _ingest(acme, records)
    client.force_login(alice)
    response = client.get("/analytics/", {"tab": "peak", "range": "7d"})
    stats = {s.label: s for s in response.context["report"].stats}
    assert stats["Busiest hour"].value == anchor.strftime("%a %Y-%m-%d 09:00")
    assert stats["Busiest hour"].sub == "5 requests · 500 tokens"
    assert stats["Peak requests per minute"].value == "5"
    assert stats["Peak tokens per minute"].value == "500"
    heat = _csv(client, tab="peak", range="7d", chart="weekday_hour")
    weekday = reports.WEEKDAYS[anchor.weekday()]
    row = next(r for r in heat if r["weekday"] == weekday)
    assert (row["h09"], row["h12"]) == ("5", "3")
    busiest = _csv(client, tab="peak", range="7d", chart="busiest_hours")
    assert [(r["requests"], r["total_tokens"]) for r in busiest] == [("5", "500"), ("3", "30")]


@pytest.mark.django_db
def test_error_bars_link_to_the_matching_log_list(client, alice, data):
    client.force_login(alice)
    expected = defaultdict(int)
    for row in data:
        if row["status"] == "error":
            expected[row["error_code"]] += 1
    response = client.get("/analytics/", {"tab": "errors", "range": "7d"})
    report = response.context["report"]
    by_code = report.table("errors_by_code")
    assert dict(zip(by_code.values("error_code"), by_code.values("errors"), strict=True)) == expected
    # Whole numbers and float rates on both databases (sum(bigint) is numeric on PostgreSQL).
    assert all(type(n) is int for n in by_code.values("errors"))
    assert all(type(r) is float for r in report.table("errors_by_model").values("error_rate"))
    figure = next(c["figure"] for c in response.context["charts"] if c["table"].name == "errors_by_code")
    assert figure["data"][0]["customdata"] == by_code.hrefs
    for code, href in zip(by_code.values("error_code"), by_code.hrefs, strict=True):
        query = parse_qs(urlsplit(href).query)
        assert query["status"] == ["error"] and query["error_code"] == [code]
        listed = client.get(href)
        assert listed.status_code == 200
        assert len(listed.context["rows"]) == expected[code]
    by_model = report.table("errors_by_model")
    for model, rate, href in zip(by_model.values("model"), by_model.values("error_rate"), by_model.hrefs, strict=True):
        rows = [r for r in data if r["model"] == model]
        assert rate == sum(r["status"] == "error" for r in rows) / len(rows)
        assert len(client.get(href).context["rows"]) == sum(r["status"] == "error" for r in rows)
    # The 10% alert level is drawn on the error-rate chart.
    figure = next(c["figure"] for c in response.context["charts"] if c["table"].name == "error_rate")
    assert [shape["y0"] for shape in figure["layout"]["shapes"]] == [0.1]


@pytest.mark.django_db
def test_filters_narrow_every_figure(client, alice, data):
    client.force_login(alice)
    rows = _csv(client, tab="cost", range="7d", chart="cost_by_key", model="claude-3", status="success")
    expected = defaultdict(lambda: [None, 0])
    for row in data:
        if row["model"] == "claude-3" and row["status"] == "success":
            if row["cost"] is not None:  # a key without a priced request is unpriced, not $0
                expected[row["api_key"]][0] = (expected[row["api_key"]][0] or 0) + row["cost"]
            expected[row["api_key"]][1] += 1
    got = {r["api_key"]: [Decimal(r["cost"]) if r["cost"] else None, int(r["requests"])] for r in rows}
    assert got == expected
    body = client.get("/analytics/", {"tab": "cost", "range": "7d", "model": "claude-3"}).content.decode()
    assert re.search(r'<option value="claude-3" selected>', body)


@pytest.mark.django_db
def test_bucket_follows_the_range(client, alice, acme):
    acme.timezone = "Asia/Kolkata"
    acme.save()
    now = timezone.now()
    base = {"model": "m", "status": "success", "prompt_tokens": 3, "completion_tokens": 4, "api_key": "k", "cost": "1"}
    _ingest(acme, [{**base, "request_id": f"r{i}", "timestamp": (now - timedelta(hours=5 * i)).isoformat()}
                   for i in range(4)])  # fmt: skip
    client.force_login(alice)
    hours = _csv(client, tab="trend", range="24h", chart="requests_over_time")
    assert len(hours) == 24
    starts = [datetime.fromisoformat(r["start"]) for r in hours]
    assert all(s.utcoffset() == timedelta(hours=5, minutes=30) and s.minute == 0 for s in starts)
    assert [b - a for a, b in itertools.pairwise(starts)] == [timedelta(hours=1)] * 23
    assert sum(int(r["requests"]) for r in hours) == 4  # 0, 5, 10 and 15 hours ago
    days = _csv(client, tab="trend", range="30d", chart="requests_over_time")
    assert len(days) == 30 and days[-1]["start"] == f"{now.astimezone(ZoneInfo('Asia/Kolkata')).date()}T00:00:00+05:30"
    end = now.astimezone(ZoneInfo("Asia/Kolkata")).date()
    weeks = _csv(client, tab="cost", range="custom", start=str(end - timedelta(days=150)), end=str(end),
                 chart="cost_by_day")  # fmt: skip
    starts = [datetime.fromisoformat(r["start"]) for r in weeks]
    assert all(s.weekday() == 0 and (s.hour, s.minute) == (0, 0) for s in starts)
    assert len(weeks) in (22, 23) and sum(Decimal(r["cost"]) for r in weeks) == 4


@pytest.mark.django_db
# PostgreSQL's counts (each usage read also sets the statement timeout and reads the
# account's retention classes); SQLite needs fewer. None grows with the number of rows.
# The cost tab also reads cost by bucket and model, and by bucket and API key (stacked bars).
@pytest.mark.parametrize(("tab", "most"), [("cost", 41), ("trend", 17), ("peak", 21), ("errors", 20)])
def test_each_tab_costs_a_fixed_number_of_queries(client, alice, data, tab, most, django_assert_max_num_queries):
    client.force_login(alice)
    client.get("/analytics/", {"tab": tab})  # session and the like settle on the first request
    with django_assert_max_num_queries(most):
        assert client.get("/analytics/", {"tab": tab, "range": "90d"}).status_code == 200
