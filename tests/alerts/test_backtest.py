"""The backtest on rows built to breach on known days and hours: how many times each kind
would have fired over the last 30 days, and when, read through analytics.usage."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.backtest import backtest
from alerts.models import AlertRule, RuleKind
from analytics.timekeys import local_midnight
from logs.ingest.services import ingest_records
from tests.factories import make_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("page_settings")]

NOW = timezone.now().replace(minute=30, second=0, microsecond=0)
TODAY = NOW.astimezone(UTC).date()


@pytest.fixture
def account(db):
    # Professional: 90 days of rows, so the baseline before the 30 days is kept.
    return make_account("backtest", tier="professional")


def _ingest(account, rows):
    records = []
    for n, (moment, fields) in enumerate(rows):
        record = {
            "request_id": f"bt-{n}",
            "timestamp": moment.isoformat(),
            "model": "gpt-4o",
            "status": "success",
            "prompt_tokens": 900,
            "completion_tokens": 100,
            "cost": "0.01",
            "api_key": "team-a",
        }
        record.update(fields)
        records.append(record)
    result = ingest_records(account=account, records=records)
    assert (result.accepted, result.rejected) == (len(records), [])


def _day(days_ago: int, hour: int = 12) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


def _rule(account, kind, **fields) -> AlertRule:
    return AlertRule(account=account, kind=kind, **fields)  # unsaved: the preview's case


def test_cost_anomaly_fires_on_the_spike_days(account):
    spikes = {10: "20", 9: "20", 3: "30"}
    rows = [(_day(n), {"cost": spikes.get(n, "1")}) for n in range(1, 46)]
    rows.append((_day(5), {"cost": "50", "model": "other-model"}))  # outside the scope
    _ingest(account, rows)
    rule = _rule(account, RuleKind.COST_ANOMALY, model="gpt-4o", params={"k": 2, "days": 14, "min_history_days": 7})
    result = backtest(rule, now=NOW)
    assert result.error == ""
    assert (result.unit, result.judged, result.breached, result.count) == ("day", 30, 3, 2)
    assert [f.start for f in result.firings] == [local_midnight(TODAY - timedelta(days=d), UTC) for d in (10, 3)]
    assert [f.value for f in result.firings] == [Decimal("20"), Decimal("30")]
    # The first spike's baseline: 14 days at $1, σ 0.
    assert result.firings[0].threshold == Decimal("1")
    # Unscoped, the other model's $50 makes day 5 a breach, and lifts the baseline of day 3
    # (mean $7.29, σ $14.32: threshold $35.93) above its $30.
    unscoped = backtest(_rule(account, RuleKind.COST_ANOMALY, params={"k": 2}), now=NOW)
    assert (unscoped.breached, unscoped.count) == (3, 2)
    assert [f.start for f in unscoped.firings] == [local_midnight(TODAY - timedelta(days=d), UTC) for d in (10, 5)]
    assert round(unscoped.firings[1].value, 2) == Decimal("51.00")


def test_cost_anomaly_without_history_has_no_verdict(account):
    _ingest(account, [(_day(n), {}) for n in (1, 2, 3)])
    result = backtest(_rule(account, RuleKind.COST_ANOMALY, params={}), now=NOW)
    assert (result.judged, result.count) == (0, 0)


def _hour(hours_ago: int, minute: int = 10) -> datetime:
    return NOW.replace(minute=0) - timedelta(hours=hours_ago) + timedelta(minutes=minute)


def _requests(hours_ago: int, count: int, errors: int) -> list:
    return [(_hour(hours_ago, minute=n % 50), {"status": "error" if n < errors else "success"}) for n in range(count)]


def test_error_rate_fires_per_window(account):
    _ingest(account, _requests(50, 25, 10) + _requests(49, 25, 0) + _requests(20, 25, 5) + _requests(19, 25, 1))
    rule = _rule(account, RuleKind.ERROR_RATE, params={"threshold": 0.10, "window_minutes": 60, "min_requests": 20})
    result = backtest(rule, now=NOW)
    assert result.error == ""
    assert (result.unit, result.judged, result.breached, result.count) == ("hour", 4, 2, 2)
    first, second = result.firings
    assert (first.start, first.value) == (NOW.replace(minute=0) - timedelta(hours=50), Decimal("0.4"))
    assert (second.start, second.value) == (NOW.replace(minute=0) - timedelta(hours=20), Decimal("0.2"))

    # Two-hour windows: the hour after each burst is in breach too (10 of 50, 6 of 50), one firing each.
    rule.params = {"threshold": 0.10, "window_minutes": 120, "min_requests": 20}
    result = backtest(rule, now=NOW)
    assert (result.breached, result.count) == (4, 2)
    assert result.firings[0].value == Decimal("0.4")

    # Scoped to another key: no requests, no verdict.
    rule.api_key = "team-b"
    assert backtest(rule, now=NOW).judged == 0


def test_token_spike_fires_on_hours_with_a_large_request(account):
    rows = [(_hour(h), {}) for h in range(1, 100, 3)]
    rows += [(_hour(70), {"prompt_tokens": 7000, "completion_tokens": 1000})]
    rows += [(_hour(69), {"prompt_tokens": 8000, "completion_tokens": 1000})]
    rows += [(_hour(30), {"prompt_tokens": 5000, "completion_tokens": 1000})]
    rows += [(_hour(10), {"prompt_tokens": 60000, "model": "other-model"})]
    _ingest(account, rows)
    rule = _rule(account, RuleKind.TOKEN_SPIKE, model="gpt-4o", params={"mode": "absolute", "tokens": 5000})
    result = backtest(rule, now=NOW)
    assert result.error == ""
    assert (result.unit, result.judged, result.breached, result.count) == ("hour", 720, 3, 2)
    assert [(f.value, f.threshold) for f in result.firings] == [(Decimal(8000), Decimal(5000)), (6000, 5000)]


def test_a_p99_token_spike_fires_against_the_days_before(account):
    # 1,000-token requests every three hours for four days, two large ones 70 and 69 hours
    # ago and a 6,000-token one 30 hours ago, on a later UTC day.
    rows = [(_hour(h), {}) for h in range(1, 100, 3)]
    rows += [(_hour(70), {"prompt_tokens": 7000, "completion_tokens": 1000})]
    rows += [(_hour(69), {"prompt_tokens": 8000, "completion_tokens": 1000})]
    rows += [(_hour(30), {"prompt_tokens": 5000, "completion_tokens": 1000})]
    _ingest(account, rows)
    rule = _rule(account, RuleKind.TOKEN_SPIKE, model="gpt-4o", params={"mode": "p99", "factor": 3, "days": 7})
    result = backtest(rule, now=NOW)
    assert result.error == ""
    # The large ones against 3 x 1,000 (every earlier request had 1,000 tokens): one firing.
    # The 6,000 one: the days before its day hold the 9,000 one, so its limit is 27,000.
    assert result.count == 1
    assert (result.firings[0].value, result.firings[0].threshold) == (Decimal(8000), Decimal(3000))
    assert result.firings[0].start == _hour(70).replace(minute=0)
    # Hours of the first day have no baseline (no verdict); the days after do.
    assert 0 < result.judged < 720


def test_a_daily_budget_fires_each_day_over_it(account):
    costs = {5: "6", 4: "7", 2: "9"}
    _ingest(account, [(_day(n), {"cost": costs.get(n, "1")}) for n in range(1, 40)])
    rule = _rule(account, RuleKind.BUDGET, params={"amount": 5, "period": "daily"})
    result = backtest(rule, now=NOW)
    assert (result.judged, result.breached, result.count) == (30, 3, 3)  # a new day is a new budget
    assert [f.value for f in result.firings] == [Decimal(6), Decimal(7), Decimal(9)]


def test_a_monthly_budget_fires_once_a_month_when_crossed(account):
    _ingest(account, [(_day(n), {"cost": "1"}) for n in range(1, 70)])
    result = backtest(_rule(account, RuleKind.BUDGET, params={"amount": 10, "period": "monthly"}), now=NOW)
    # Expected: each month whose 11th day (the cumulative $11 > $10) is inside the 30 days,
    # or whose first 30-day day already is past it.
    first = TODAY - timedelta(days=30)
    days = [first + timedelta(days=n) for n in range(30)]
    crossings = sorted({d.replace(day=1) for d in days if d.day >= 11 and d < TODAY})
    assert result.count == len(crossings)
    assert [f.start for f in result.firings] == [local_midnight(m, UTC) for m in crossings]
    assert result.breached == sum(1 for d in days if d.day >= 11 and d < TODAY)


def test_the_edit_page_shows_the_saved_rule_s_backtest(client, account):
    from tests.factories import make_user

    admin = make_user("ada@backtest.test", account=account, role="admin")
    costs = {5: "6", 4: "7"}
    _ingest(account, [(_day(n), {"cost": costs.get(n, "1")}) for n in range(1, 10)])
    rule = AlertRule.objects.create(account=account, kind="budget", params={"amount": 5, "period": "daily"})
    client.force_login(admin)
    page = client.get(f"/alerts/{rule.pk}/").content.decode()
    assert 'id="backtest-count">2 times' in page
    assert "2 of the 30 days with a verdict were in breach" in page
