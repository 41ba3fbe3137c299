"""Issue 17's analytics polish: a "vs previous period" that does not read as a spike when the
previous period is empty or only partly covered by the account's data, the dashboard's
comparison label, its top models / keys tables, the partial current bucket, and cost stacked
by model. Rows are placed relative to a fixed `now` so each case is built on purpose."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from analytics import dashboard as figures
from analytics import reports
from analytics.usage import UsageFilters
from logs.ingest.services import ingest_records
from tests.factories import make_account

UTC_ZONE = ZoneInfo("UTC")


def _ingest(account, rows):
    """rows: (timestamp, cost, model, api_key)"""
    records = [
        {
            "request_id": f"r-{i}",
            "timestamp": ts.isoformat(),
            "model": model,
            "status": "success",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "api_key": key,
            "cost": cost,
        }
        for i, (ts, cost, model, key) in enumerate(rows)
    ]
    assert ingest_records(account=account, records=records).accepted == len(records)


@pytest.fixture
def now():
    # Midday, so "today" and the 7-day range have room before and after each row.
    moment = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return moment if moment <= datetime.now(UTC) else moment - timedelta(days=1)


@pytest.fixture
def account(db):
    return make_account("polish")


def _cost_sub(account, now):
    period = reports.resolve_period(range_name="7d", start=None, end=None, zone=UTC_ZONE, now=now)
    report = reports.cost_report(account=account, period=period, filters=UsageFilters())
    return period, {s.label: s for s in report.stats}["Total cost"].sub


def _trend_subs(account, now):
    period = reports.resolve_period(range_name="7d", start=None, end=None, zone=UTC_ZONE, now=now)
    report = reports.trend_report(account=account, period=period, filters=UsageFilters())
    return {s.label: s.sub for s in report.stats}


# --- 1. the analytics page ---------------------------------------------------------------------


def test_empty_previous_period_says_so(account, now):
    _ingest(account, [(now - timedelta(hours=1), "3.0", "m", "k")])
    _period, sub = _cost_sub(account, now)
    assert sub == "no data in the previous period"
    assert set(_trend_subs(account, now).values()) == {"no data in the previous period"}


def test_partly_covered_previous_period_names_the_start(account, now):
    period = reports.resolve_period(range_name="7d", start=None, end=None, zone=UTC_ZONE, now=now)
    # The data starts on the previous period's last day: 1/7 of it is covered.
    first = period.previous_end - timedelta(hours=2)
    _ingest(account, [(first, "0.00003", "m", "k"), (now - timedelta(hours=1), "41.0", "m", "k")])
    _period, sub = _cost_sub(account, now)
    assert sub == f"previous period only partly covered (since {first.date().isoformat()})"
    assert "%" not in sub
    assert _trend_subs(account, now)["Requests"] == sub


def test_fully_covered_previous_period_keeps_the_percentage(account, now):
    period = reports.resolve_period(range_name="7d", start=None, end=None, zone=UTC_ZONE, now=now)
    _ingest(
        account,
        [
            (period.previous_start - timedelta(days=1), "5.0", "m", "k"),  # before: the data covers it all
            (period.previous_start + timedelta(hours=3), "0.60", "m", "k"),
            (now - timedelta(hours=1), "0.90", "m", "k"),
        ],
    )
    _period, sub = _cost_sub(account, now)
    assert sub == "+50.0% vs previous period ($0.60)"
    assert _trend_subs(account, now)["Requests"] == "+0.0% vs previous period"


# --- 1 and 2. the dashboard --------------------------------------------------------------------


def test_dashboard_with_data_starting_this_month_does_not_compare(account):
    now = datetime(2026, 12, 6, 15, 30, tzinfo=UTC)
    _ingest(
        account, [(datetime(2026, 12, 2, 9, tzinfo=UTC), "2.0", "m", "k"), (now - timedelta(hours=1), "1.0", "m", "k")]
    )
    today, month = figures.dashboard(account=account, now=now, zone=UTC_ZONE).periods
    assert month.previous.requests == 0
    assert month.previous_note == "no data in the previous period"
    assert (month.cost_change, month.cost_change_text, month.error_rate_change) == (None, "", None)
    assert month.period.previous_label == "vs Nov 1–6, same elapsed time"
    assert today.period.previous_label == "vs yesterday Dec 5 to 15:30"
    assert today.previous_note == "no data in the previous period"


def test_dashboard_month_partly_covered_and_fully_covered(account):
    now = datetime(2026, 12, 6, 15, 30, tzinfo=UTC)
    _ingest(
        account, [(datetime(2026, 11, 5, 9, tzinfo=UTC), "2.0", "m", "k"), (now - timedelta(hours=1), "3.0", "m", "k")]
    )
    _today, month = figures.dashboard(account=account, now=now, zone=UTC_ZONE).periods
    assert month.previous.requests == 1
    # Nov 5 09:00 .. Nov 6 15:30 of Nov 1 .. Nov 6 15:30: about a quarter covered.
    assert month.previous_note == "previous period only partly covered (since 2026-11-05)"
    assert month.cost_change is None and not month.comparable

    other = make_account("covered")
    _ingest(
        other,
        [
            (datetime(2026, 10, 20, tzinfo=UTC), "9.0", "m", "k"),
            (datetime(2026, 11, 2, tzinfo=UTC), "2.0", "m", "k"),
            (now - timedelta(hours=1), "3.0", "m", "k"),
        ],
    )
    _today, month = figures.dashboard(account=other, now=now, zone=UTC_ZONE).periods
    assert month.comparable and month.previous_note == ""
    assert month.previous.cost == Decimal("2.0")
    assert month.cost_change == pytest.approx(0.5) and month.cost_change_text == "+50%"


def test_dashboard_page_shows_the_label_and_the_note(client, account):
    from tests.factories import make_user

    user = make_user("pat@example.com", account=account)
    client.force_login(user)
    _ingest(account, [(datetime.now(UTC) - timedelta(minutes=5), "1.0", "m", "k")])
    body = client.get("/").content.decode()
    assert "same elapsed time" in body or "the whole month" in body or "nothing elapsed yet" in body
    assert "no data in the previous period" in body
    month = body.split('data-period="month"')[1].split("</section>")[0]
    assert "last month" not in month and " · " not in month  # no "$0.00 last month · +x%"


# --- 3. top models and keys --------------------------------------------------------------------


def test_dashboard_top_models_and_keys_sum_the_last_30_days(client, account):
    from logs.models import ApiKey
    from tests.factories import make_user

    now = datetime.now(UTC)
    old = now - timedelta(days=45)  # outside the 30 days: in no table
    rows = [(old, "100.0", "gpt-4o", "k1")]
    rows += [(now - timedelta(hours=1 + i), "0.25", "gpt-4o", "k1") for i in range(4)]  # $1.00
    rows += [(now - timedelta(hours=2), "3.5", "claude", "k2"), (now - timedelta(days=3), "0.125", "claude", "k1")]
    rows += [(now - timedelta(days=1), "0.01", f"tiny-{i}", "k3") for i in range(6)]  # 6 small models
    _ingest(account, rows)
    other = make_account("other-acct")
    _ingest(other, [(now - timedelta(hours=1), "999.0", "gpt-4o", "k1")])
    board = figures.dashboard(account=account, now=now, zone=UTC_ZONE)
    models = {r.name: (r.cost, r.requests) for r in board.top_models}
    assert models["claude"] == (Decimal("3.625"), 2)
    assert models["gpt-4o"] == (Decimal("1.00"), 4)
    assert [r.name for r in board.top_models][:2] == ["claude", "gpt-4o"]
    assert len(board.top_models) == 6  # top 5, then the rest
    assert board.top_models[-1].name == "other (3 models)" and board.top_models[-1].requests == 3
    assert board.top_models[-1].cost == Decimal("0.03")
    assert sum(r.cost for r in board.top_models) == Decimal("4.685")
    keys = {r.name: (r.cost, r.requests) for r in board.top_keys}
    assert keys == {"k2": (Decimal("3.5"), 1), "k1": (Decimal("1.125"), 5), "k3": (Decimal("0.06"), 6)}
    assert board.top_keys[0].share == pytest.approx(3.5 / 4.685)

    user = make_user("top@example.com", account=account)
    client.force_login(user)
    ApiKey.objects.filter(account=account, identifier="k2").update(display_name="Batch jobs")
    body = client.get("/").content.decode()
    top = body.split('id="top-keys"')[1].split("</table>")[0]
    assert "Batch jobs" in top and "$3.50" in top and "999" not in body.split('id="dashboard-top"')[1]


# --- 4. the partial current bucket -------------------------------------------------------------


def test_current_bucket_is_marked_partial_in_the_figure_json(account):
    from analytics import figures as charts

    now = datetime.now(UTC)
    _ingest(account, [(now - timedelta(days=2), "1.0", "m", "k"), (now - timedelta(seconds=30), "2.0", "m", "k")])
    period = reports.resolve_period(range_name="7d", start=None, end=None, zone=UTC_ZONE, now=now)
    report = reports.cost_report(account=account, period=period, filters=UsageFilters())
    data = charts.figure_json(report.table("cost_by_day"), period=period)
    bar = data["data"][0]
    assert bar["marker"]["pattern"]["shape"] == [""] * 6 + ["/"]
    assert bar["marker"]["opacity"] == [1] * 6 + [0.5]
    assert [a["text"] for a in data["layout"]["annotations"]] == ["so far"]
    assert data["layout"]["annotations"][0]["x"] == now.strftime("%Y-%m-%d 00:00")
    assert data["layout"]["meta"] == {"partial_index": 6}

    trend = reports.trend_report(account=account, period=period, filters=UsageFilters())
    line = charts.figure_json(trend.table("requests_over_time"), period=period)
    this, previous = line["data"]
    assert this["marker"]["symbol"][-1] == "circle-open" and this["marker"]["symbol"][0] == "circle"
    assert "symbol" not in previous.get("marker", {})

    # A range that ended before now has no partial bucket.
    today = now.date()
    past = reports.resolve_period(
        range_name="custom", start=today - timedelta(days=5), end=today - timedelta(days=1), zone=UTC_ZONE, now=now
    )
    past_report = reports.cost_report(account=account, period=past, filters=UsageFilters())
    past_data = charts.figure_json(past_report.table("cost_by_day"), period=past)
    assert "annotations" not in past_data["layout"] and "pattern" not in past_data["data"][0].get("marker", {})


def test_analytics_page_draws_the_partial_mark(client, account):
    from tests.factories import make_user

    client.force_login(make_user("chart@example.com", account=account))
    _ingest(account, [(datetime.now(UTC) - timedelta(minutes=2), "1.0", "m", "k")])
    body = client.get("/analytics/", {"range": "7d"}).content.decode()
    assert "so far" in body and "partial_index" in body


# --- 5. cost stacked by model and by key -------------------------------------------------------


def test_cost_stacked_by_model_and_key_adds_up_to_the_totals(client, account):
    from analytics import figures as charts
    from tests.factories import make_user

    now = datetime.now(UTC)
    rows = []
    for day in range(5):
        for i in range(9):  # nine models: six shown, three in "other"
            rows.append(
                (now - timedelta(days=day, minutes=10 + i), str(Decimal("0.5") * (i + 1)), f"model-{i}", f"key-{i % 2}")
            )
    _ingest(account, rows)
    period = reports.resolve_period(range_name="7d", start=None, end=None, zone=UTC_ZONE, now=now)
    report = reports.cost_report(account=account, period=period, filters=UsageFilters())
    by_day = report.table("cost_by_day")
    stacked = report.table("cost_over_time_by_model")
    labels = [c.label for c in stacked.columns[1:]]
    assert labels == ["model-8", "model-7", "model-6", "model-5", "model-4", "model-3", "other (3)"]
    daily = [Decimal(0) if c is None else c for c in by_day.values("cost")]
    assert [sum(row[1:]) for row in stacked.rows] == daily
    assert stacked.values("other")[-1] == Decimal("0.5") + Decimal("1.0") + Decimal("1.5")
    assert sum(daily) == 5 * Decimal("22.5")

    data = charts.figure_json(stacked, period=period)
    assert data["layout"]["barmode"] == "stack"
    assert [t["name"] for t in data["data"]] == labels
    sums = [sum(t["y"][i] for t in data["data"]) for i in range(len(stacked.rows))]
    assert sums == pytest.approx([float(d) for d in daily])

    keys = report.table("cost_over_time_by_api_key")
    assert [c.label for c in keys.columns[1:]] == ["key-0", "key-1"]
    assert [sum(row[1:]) for row in keys.rows] == daily
    assert keys.values("key-0")[-1] == sum(Decimal("0.5") * (i + 1) for i in range(0, 9, 2))

    client.force_login(make_user("stack@example.com", account=account))
    csv_text = client.get(
        "/analytics/", {"range": "7d", "chart": "cost_over_time_by_model", "format": "csv"}
    ).content.decode()
    assert csv_text.splitlines()[0] == "start,model-8,model-7,model-6,model-5,model-4,model-3,other"
