"""One evaluation pass reads its figures in a fixed number of queries: the same for 5
accounts as for 50, with every kind of rule and scope present."""

import math
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.evaluation import evaluate_rules
from alerts.models import AlertEvent, AlertRule, RuleKind
from tests.alerts.conftest import NOW, send
from tests.factories import make_account

# claim 1, rollup states 1, daily rows 4 projections, monthly rows 1, window slots 3 sources,
# rule states 1, events 1; and the savepoint of the pass inside the test's transaction (2).
MAX_QUERIES = 14


def _event_batches(events: int) -> int:
    """INSERTs of `events` events: one on PostgreSQL; on SQLite Django splits them by its
    999-parameter limit (14 columns: 71 a statement)."""
    if connection.vendor == "postgresql" or not events:
        return min(events, 1)
    return math.ceil(events / (999 // 14))


def _accounts(n: int, offset: int = 0):
    accounts = []
    for i in range(offset, offset + n):
        account = make_account(f"load-{i}", timezone=("UTC", "Asia/Kolkata", "America/New_York")[i % 3])
        # Each account fires both error rates, both token spikes and the monthly budget.
        send(account, NOW - timedelta(minutes=3), 20, status="error", prompt_tokens=200_000, model=f"m{i % 4}")
        send(account, NOW - timedelta(days=2), 1, cost="2.00")
        AlertRule.objects.bulk_create(
            [
                AlertRule(account=account, kind=RuleKind.BUDGET, params={"amount": 1, "period": "daily"}),
                AlertRule(account=account, kind=RuleKind.BUDGET, params={"amount": 0.1, "period": "monthly"}),
                AlertRule(account=account, kind=RuleKind.BUDGET, model="m1", params={"amount": 1}),
                AlertRule(account=account, kind=RuleKind.BUDGET, api_key="team-a", params={"amount": 1}),
                AlertRule(account=account, kind=RuleKind.COST_ANOMALY, model="m1", api_key="team-a"),
                AlertRule(account=account, kind=RuleKind.ERROR_RATE, model=f"m{i % 4}"),
                AlertRule(account=account, kind=RuleKind.TOKEN_SPIKE, api_key="team-a"),
            ]
        )
        accounts.append(account)
    return accounts


def _count_pass(at) -> tuple[int, int, int]:
    with CaptureQueriesContext(connection) as queries:
        outcomes = evaluate_rules(now=at, force=True)
    return len(queries), len(outcomes), sum(1 for outcome in outcomes if outcome.event is not None)


@pytest.mark.django_db
def test_a_pass_over_5_or_50_accounts_takes_the_same_queries():
    _accounts(5)
    small, rules, events = _count_pass(NOW)
    assert (rules, events) == (5 * 10, 5 * 5)
    # The next pass: all still in breach inside the cooldown, nothing to record.
    small_steady, _, events = _count_pass(NOW + timedelta(minutes=1))
    assert events == 0
    AlertEvent.objects.all().delete()
    AlertRule.objects.update(state="unknown", last_notified_at=None)
    _accounts(45, offset=5)
    large, rules, events = _count_pass(NOW)
    assert (rules, events) == (50 * 10, 50 * 5)
    large_steady, _, events = _count_pass(NOW + timedelta(minutes=1))
    assert events == 0
    assert AlertEvent.objects.filter(kind="error_rate", state="fired").count() == 50 * 2

    assert small_steady == large_steady == MAX_QUERIES - 1  # no INSERT of events
    assert small - _event_batches(25) == large - _event_batches(250) == MAX_QUERIES - 1
