"""The dashboard home and the operator's all-accounts view agree with sums computed here
from the ingested records: today / this month in the account's reporting zone (Asia/Kolkata,
+05:30) with records just before and after local midnight, the same elapsed time of
yesterday / last month, the trend charts, and every account's totals for a range.

"Today" depends on the clock, so records are placed relative to timezone.now() and the
expected figures are computed from the same rules in plain Python."""

import csv
import io
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics import dashboard as figures
from logs.ingest.services import ingest_records
from logs.templatetags.meterlog_format import money
from tests.factories import make_account

KOLKATA = ZoneInfo("Asia/Kolkata")


def _midnight(day, zone):
    return datetime.combine(day, time(0), tzinfo=zone)


def _record(request_id, ts, *, cost="0.25", status="success", prompt=100, completion=20, model="gpt-4o"):
    record = {
        "request_id": request_id,
        "timestamp": ts.isoformat(),
        "model": model,
        "status": status,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "api_key": "team-a",
    }
    if cost is not None:
        record["cost"] = cost
    if status == "error":
        record["error_code"] = "rate_limited"
    return record


def _windows(now, zone):
    """(start, end) of today, yesterday to the same time, this month, last month to the same
    elapsed time, computed independently of analytics.dashboard."""
    today = now.astimezone(zone).date()
    day_start = _midnight(today, zone)
    yesterday = _midnight(today - timedelta(days=1), zone)
    first = today.replace(day=1)
    month_start = _midnight(first, zone)
    last_month = _midnight((first - timedelta(days=1)).replace(day=1), zone)
    return {
        "today": (day_start, now),
        "yesterday": (yesterday, min(yesterday + (now - day_start), day_start)),
        "month": (month_start, now),
        "last_month": (last_month, min(last_month + (now - month_start), month_start)),
    }


def _records_around_midnight(prefix, now, zone, *, cost_scale=1):
    """Records just before and after local midnight, early yesterday, early last month and
    40 days ago; a mix of errors and unpriced rows. Never later than `now`."""
    w = _windows(now, zone)
    day_start = w["today"][0]
    elapsed = now - day_start
    after = day_start + min(timedelta(minutes=1), elapsed / 2)
    spec = [
        (after, "1.5", "success"),
        (after + timedelta(seconds=1) if elapsed > timedelta(seconds=4) else after, "0.125", "error"),
        (now - timedelta(seconds=1), None, "success"),  # unpriced
        (day_start - timedelta(minutes=1), "2.25", "success"),  # yesterday, last minute
        (day_start - timedelta(seconds=1), "0.5", "error"),
        (w["yesterday"][0] + elapsed / 2, "0.75", "success"),  # inside yesterday's same-time window
        (w["last_month"][0] + (now - w["month"][0]) / 2, "3.5", "success"),
        (w["last_month"][0] + timedelta(seconds=30), "0.25", "error"),
        (now - timedelta(days=40), "8", "success"),
        (now - timedelta(hours=5), "0.375", "success"),
        (now - timedelta(hours=23, minutes=10), "0.0625", "success"),
        (now - timedelta(days=3, hours=2), "1", "error"),
    ]
    records = []
    for i, (ts, cost, status) in enumerate(spec):
        scaled = None if cost is None else str(Decimal(cost) * cost_scale)
        records.append(_record(f"{prefix}-{i:03d}", ts, cost=scaled, status=status, prompt=100 + i))
    return records


def _expected(records, start, end):
    rows = [r for r in records if start <= datetime.fromisoformat(r["timestamp"]) < end]
    return {
        "requests": len(rows),
        "errors": sum(r["status"] == "error" for r in rows),
        "cost": sum((Decimal(r["cost"]) for r in rows if r.get("cost") is not None), Decimal(0)),
        "unpriced": sum(r.get("cost") is None for r in rows),
        "total_tokens": sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows),
    }


def _actual(t):
    return {
        "requests": t.requests,
        "errors": t.errors,
        "cost": t.cost,
        "unpriced": t.unpriced,
        "total_tokens": t.total_tokens,
    }


@pytest.fixture
def kolkata(acme, globex):
    for account in (acme, globex):
        account.timezone = "Asia/Kolkata"
        account.save(update_fields=["timezone"])
    return acme


@pytest.fixture
def ingested(kolkata, globex):
    now = timezone.now()
    acme_records = _records_around_midnight("acme", now, KOLKATA)
    # Globex: the same times at 1000x the cost; never in acme's figures.
    globex_records = _records_around_midnight("globex", now, KOLKATA, cost_scale=1000)
    assert ingest_records(account=kolkata, records=acme_records).accepted == len(acme_records)
    assert ingest_records(account=globex, records=globex_records).accepted == len(globex_records)
    return now, acme_records, globex_records


# --- the figures ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_today_and_month_equal_sums_in_the_account_zone(ingested, kolkata):
    now, records, _globex = ingested
    board = figures.dashboard(account=kolkata, now=now)
    w = _windows(now, KOLKATA)
    today, month = board.periods
    assert (today.period.key, month.period.key) == ("today", "month")
    assert (today.period.start, today.period.end) == w["today"]
    assert (today.period.previous_start, today.period.previous_end) == w["yesterday"]
    assert (month.period.start, month.period.previous_start, month.period.previous_end) == (
        w["month"][0],
        *w["last_month"],
    )
    assert _actual(today.current) == _expected(records, *w["today"])
    assert _actual(today.previous) == _expected(records, *w["yesterday"])
    assert _actual(month.current) == _expected(records, *w["month"])
    assert _actual(month.previous) == _expected(records, *w["last_month"])
    # The records just after local midnight are today's, the ones just before are yesterday's.
    today_ids = {r["request_id"] for r in records if w["today"][0] <= datetime.fromisoformat(r["timestamp"])}
    assert {"acme-000", "acme-001", "acme-002"} <= today_ids and not {"acme-003", "acme-004"} & today_ids
    assert float(today.current.error_rate) == pytest.approx(int(today.current.errors) / int(today.current.requests))
    previous = _expected(records, *w["yesterday"])
    assert previous["requests"] >= 1
    change = (today.current.cost - previous["cost"]) / previous["cost"]
    assert today.cost_change_text == f"{float(change) * 100:+.0f}%"
    rate_change = int(today.current.errors) / int(today.current.requests) - previous["errors"] / previous["requests"]
    assert today.error_rate_change_text == f"{rate_change * 100:+.1f} pts"


@pytest.mark.django_db
def test_trend_charts_cover_the_last_30_days_and_24_hours(ingested, kolkata):
    now, records, _globex = ingested
    board = figures.dashboard(account=kolkata, now=now)
    today = now.astimezone(KOLKATA).date()
    assert len(board.days) == 30
    assert board.days[0].start == _midnight(today - timedelta(days=29), KOLKATA)
    assert board.days[-1].start == _midnight(today, KOLKATA)
    for bucket in board.days:
        expected = _expected(records, bucket.start, min(bucket.end, now))
        assert (bucket.total.requests, bucket.total.cost) == (expected["requests"], expected["cost"])
    last_hour = now.astimezone(KOLKATA).replace(minute=0, second=0, microsecond=0)
    assert len(board.hours) == 24
    assert board.hours[-1].start == last_hour and board.hours[0].start == last_hour - timedelta(hours=23)
    assert sum(b.total.requests for b in board.hours) == _expected(records, board.hours[0].start, now)["requests"]
    # The figures draw the same numbers, labelled in the account's zone.
    charts = {chart.id: chart for chart in board.charts}
    by_day = charts["fig-requests-by-day"].figure["data"][0]
    assert by_day["x"][-1] == today.isoformat()
    assert by_day["y"] == [b.total.requests for b in board.days]
    cost_rows = charts["fig-cost-by-day"].rows
    assert sum(Decimal(value) for _, value in cost_rows) == _expected(records, board.days[0].start, now)["cost"]
    by_hour = charts["fig-requests-by-hour"].figure["data"][0]
    assert by_hour["x"][-1] == last_hour.strftime("%Y-%m-%d %H:%M")
    assert sum(by_hour["y"]) == sum(b.total.requests for b in board.hours)


@pytest.mark.django_db
def test_comparison_periods_end_with_the_shorter_month():
    zone = ZoneInfo("Asia/Kathmandu")
    now = datetime(2026, 3, 31, 18, 0, tzinfo=zone)
    day, month = figures.periods(now=now, zone=zone)
    assert day.previous_start == datetime(2026, 3, 30, tzinfo=zone)
    assert day.previous_end == datetime(2026, 3, 30, 18, 0, tzinfo=zone)
    # 30 days and 18 hours into March: February (28 days) is compared whole.
    assert month.previous_start == datetime(2026, 2, 1, tzinfo=zone)
    assert month.previous_end == datetime(2026, 3, 1, tzinfo=zone)


# --- the page ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_dashboard_page_shows_only_the_members_account(client, ingested, kolkata, globex, alice, bob):
    now, records, globex_records = ingested
    client.force_login(alice)
    response = client.get("/")
    assert response.status_code == 200
    assert response.templates[0].name == "analytics/dashboard.html"
    board = response.context["board"]
    w = _windows(now, KOLKATA)
    today, month = board.periods
    assert _actual(today.current) == _expected(records, *w["today"])
    assert _actual(month.current) == _expected(records, *w["month"])
    body = response.content.decode()
    assert 'data-figure="fig-requests-by-day"' in body and 'id="fig-requests-by-day"' in body
    assert "/static/vendor/plotly.min.js" in body and 'src="http' not in body
    assert 'href="/analytics/"' in body and 'href="/logs/"' in body
    assert "All accounts" not in body  # the operator link is for staff
    # The cards show acme's own sums; globex's (1000x the cost) never reach them.
    cards = body[body.index('data-period="today"') : body.index('data-period="month"')]
    assert f'data-stat="cost">{money(_expected(records, *w["today"])["cost"])}<' in cards
    assert f'data-stat="requests">{_expected(records, *w["today"])["requests"]}<' in cards
    assert "globex" not in body.lower()

    client.force_login(bob)
    board = client.get("/").context["board"]
    globex_today = _expected(globex_records, *w["today"])["cost"]
    assert board.periods[0].current.cost == globex_today == _expected(records, *w["today"])["cost"] * 1000


@pytest.mark.django_db
def test_dashboard_query_count_is_pinned(client, ingested, alice, django_assert_max_num_queries):
    client.force_login(alice)
    # Session, user, account, membership and the usage check, then four usage reads (the daily
    # series, which also answers today and this month; the hourly series; yesterday and last
    # month to the same time; the top models and top keys, and the keys' names), each up to
    # three reads (daily rows, quarter rows, raw edges); on PostgreSQL each read
    # also sets its statement timeout in a savepoint and looks up the retention classes.
    # The count does not grow with the data.
    with django_assert_max_num_queries(50 if connection.vendor == "postgresql" else 27):
        assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_empty_account_gets_a_friendly_start(client, acme, alice):
    client.force_login(alice)
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "No requests yet" in body and "/api/v1/ingest" in body and 'href="/api/v1/docs/"' in body
    assert "plotly" not in body


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/"
    response = client.get("/analytics/operator/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/analytics/operator/csv/").status_code == 302


# --- the operator view ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_operator_sees_every_account_with_its_sums(
    client, ingested, kolkata, globex, olivia, django_assert_max_num_queries
):
    idle = make_account("idle", name="Idle Inc")
    now, records, globex_records = ingested
    client.force_login(olivia)
    # Session, user, the shell's account lookups and session save, the accounts, and one usage
    # read over all accounts (two sources: whole UTC days and the hours at the edges), not
    # one per account; on PostgreSQL the read also sets its statement timeout in a savepoint.
    with (
        django_assert_max_num_queries(13 if connection.vendor == "postgresql" else 10),
        CaptureQueriesContext(connection) as captured,
    ):
        response = client.get("/analytics/operator/?range=7d")
    assert response.status_code == 200
    view = response.context["view"]
    start = view.start
    # 7 days of whole UTC hours, ending with the current hour.
    assert (start.minute, start.second, start.microsecond) == (0, 0, 0) and view.end - start == timedelta(days=7)
    assert view.end - timedelta(hours=1) <= timezone.now() < view.end and now < view.end
    sql = " ".join(query["sql"] for query in captured.captured_queries)
    # Small by construction: UTC days and hours only (hours at the edges, none when the window
    # ends at midnight), never quarters or raw rows.
    assert "analytics_usageutcday" in sql and ("analytics_usagehour" in sql) == (start.hour != 0)
    assert "analytics_usagequarter" not in sql and "logs_requestlog" not in sql
    assert [row.account.slug for row in view.rows] == ["globex", "acme", "idle"]  # by cost, desc
    by_slug = {row.account.slug: _actual(row.totals) for row in view.rows}
    assert by_slug["acme"] == _expected(records, start, view.end)
    assert by_slug["globex"] == _expected(globex_records, start, view.end)
    assert by_slug["idle"]["requests"] == 0 and idle.pk
    assert _actual(view.total) == {
        key: by_slug["acme"][key] + by_slug["globex"][key]
        for key in ("requests", "errors", "cost", "unpriced", "total_tokens")
    }
    body = response.content.decode()
    assert 'data-account="acme"' in body and 'data-account="globex"' in body
    assert 'data-figure="fig-top-accounts"' in body
    chart = view.figure["data"][0]
    assert chart["y"] == ["Acme Corp", "Globex"]  # drawn bottom-up: the most expensive last
    assert chart["x"] == [float(by_slug["acme"]["cost"]), float(by_slug["globex"]["cost"])]
    # The 40-day-old record is outside 7 days but inside 90.
    wide = client.get("/analytics/operator/?range=90d").context["view"]
    assert {row.account.slug: row.totals.requests for row in wide.rows}["acme"] == _expected(
        records, wide.start, wide.end
    )["requests"]


@pytest.mark.django_db
def test_operator_csv_equals_the_sums(client, ingested, kolkata, globex, olivia):
    _now, records, globex_records = ingested
    client.force_login(olivia)
    response = client.get("/analytics/operator/csv/?range=30d")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="meterlog-accounts-30d-')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["account"] for row in rows] == ["globex", "acme", ""]
    # The CSV's range ends when it was answered: recompute the window from the 30 days.
    end = timezone.now()
    for row, source in ((rows[0], globex_records), (rows[1], records)):
        want = _expected(source, end - timedelta(days=30), end)
        assert int(row["requests"]) == want["requests"]
        assert int(row["errors"]) == want["errors"]
        assert int(row["total_tokens"]) == want["total_tokens"]
        assert Decimal(row["cost"]) == want["cost"]
        assert int(row["unpriced_requests"]) == want["unpriced"]
        assert float(row["error_rate"]) == pytest.approx(want["errors"] / want["requests"], abs=1e-6)
    assert rows[2]["name"] == "All accounts"
    assert Decimal(rows[2]["cost"]) == Decimal(rows[0]["cost"]) + Decimal(rows[1]["cost"])
    assert int(rows[2]["requests"]) == int(rows[0]["requests"]) + int(rows[1]["requests"])


@pytest.mark.django_db
def test_operator_view_is_for_staff_only(client, ingested, alice, olivia):
    client.force_login(alice)
    assert client.get("/analytics/operator/").status_code == 403
    response = client.get("/analytics/operator/csv/")
    assert response.status_code == 403 and "globex" not in response.content.decode().lower()
    client.force_login(olivia)
    bad = client.get("/analytics/operator/?range=2w")
    assert bad.status_code == 400 and "Unknown range" in bad.content.decode()
    bad_csv = client.get("/analytics/operator/csv/?range=2w")
    assert bad_csv.status_code == 400 and "Unknown range" in bad_csv.content.decode()
    # The dashboard links staff to the all-accounts view.
    assert 'href="/analytics/operator/"' in client.get("/").content.decode()
