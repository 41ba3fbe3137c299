"""Each rule kind fires on traffic built to breach it and stays quiet on traffic that does not,
judged on the rollups ingest wrote; cooldown and recovery; the command."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from alerts.evaluation import evaluate_rules
from alerts.models import AlertEvent, AlertRule, RuleKind, RuleState
from tests.alerts.conftest import NOW, send
from tests.factories import make_account

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def _rule(account, kind):
    return AlertRule.objects.get(account=account, kind=kind)


def _only(account, kind, **fields):
    """Keep the account's rule of `kind` (updated with `fields`), switch the others off."""
    AlertRule.objects.filter(account=account).exclude(kind=kind).update(enabled=False)
    rule = _rule(account, kind)
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.save()
    return rule


def _set(rule, **fields):
    """Change a rule between passes without writing back its stale state fields."""
    AlertRule.objects.filter(pk=rule.pk).update(**fields)


def _events(account):
    return list(AlertEvent.objects.filter(account=account).order_by("created_at", "pk"))


def _history(account, days: int, cost: str = "1.00", *, at_hour: int = 6, now=NOW):
    """One request a day costing about `cost` on each of the `days` days before today
    (a little spread so the standard deviation is not zero)."""
    for n in range(1, days + 1):
        day = (now - n * DAY).replace(hour=at_hour, minute=0)
        send(account, day, cost=str(Decimal(cost) + Decimal(n % 3) / 100))


@pytest.mark.django_db
def test_a_new_account_gets_the_three_default_rules_switched_on(settings):
    account = make_account("fresh")
    rules = AlertRule.objects.filter(account=account)
    assert sorted(rules.values_list("kind", "enabled", "params__mode")) == [
        ("cost_anomaly", True, None),
        ("error_rate", True, None),
        ("token_spike", True, "absolute"),
    ]
    assert _rule(account, RuleKind.COST_ANOMALY).params["k"] == 2.0
    assert _rule(account, RuleKind.ERROR_RATE).params["threshold"] == 0.10
    settings.METERLOG_ALERT_DEFAULT_RULES = False
    assert not AlertRule.objects.filter(account=make_account("bare")).exists()


@pytest.mark.django_db
def test_cost_anomaly_fires_on_a_dear_day_and_not_on_an_ordinary_one(
    acme, notified, django_capture_on_commit_callbacks
):
    _only(acme, RuleKind.COST_ANOMALY)
    _history(acme, 14)
    send(acme, NOW - 2 * MINUTE, cost="0.90")
    [outcome] = evaluate_rules(now=NOW)
    assert outcome.verdict.state == RuleState.OK and outcome.event is None
    assert outcome.verdict.value == Decimal("0.9")

    send(acme, NOW - MINUTE, cost="4.10")
    with django_capture_on_commit_callbacks(execute=True):
        [outcome] = evaluate_rules(now=NOW + MINUTE, force=True)
    [event] = _events(acme)
    assert (event.kind, event.state, event.value) == ("cost_anomaly", "fired", Decimal("5"))
    # mean of 14 days of 1.00/1.01/1.02 + 2σ
    assert Decimal("1.01") < event.threshold < Decimal("1.03")
    assert event.window_start == NOW.replace(hour=0, minute=0) and event.window_end == NOW + MINUTE
    assert notified == [[event]] and event.notified
    rule = _rule(acme, RuleKind.COST_ANOMALY)
    assert (rule.state, rule.last_value, rule.last_notified_at) == (RuleState.FIRING, Decimal(5), NOW + MINUTE)


@pytest.mark.django_db
def test_cost_anomaly_judges_yesterday_too_and_respects_the_floor(acme):
    rule = _only(acme, RuleKind.COST_ANOMALY)
    _history(acme, 15)
    send(acme, NOW - DAY + MINUTE, cost="6.00")  # yesterday: 6 + its history request
    [outcome] = evaluate_rules(now=NOW)
    assert outcome.verdict.firing and outcome.verdict.day == (NOW - DAY).date()
    assert outcome.event.window_start == (NOW - DAY).replace(hour=0, minute=0)
    assert outcome.event.window_end == NOW.replace(hour=0, minute=0)

    _set(rule, params={**rule.params, "floor": 50})
    [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.verdict.state == RuleState.OK and outcome.event.state == "recovered"
    assert outcome.verdict.threshold == Decimal(50)


@pytest.mark.django_db
def test_cost_anomaly_needs_the_minimum_history(acme):
    _only(acme, RuleKind.COST_ANOMALY)
    _history(acme, 6)  # min_history_days is 7
    send(acme, NOW - MINUTE, cost="40")
    [outcome] = evaluate_rules(now=NOW)
    assert outcome.verdict.state == RuleState.UNKNOWN and outcome.event is None
    send(acme, NOW - 7 * DAY, cost="1.00")
    [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.verdict.firing and outcome.event.state == "fired"


@pytest.mark.django_db
def test_cost_anomaly_counts_days_in_the_accounts_zone():
    """Kolkata is UTC+05:30: at 19:00 UTC its day began at 18:30 UTC. A dear request at
    18:40 UTC is today's there, the 18:20 UTC one yesterday's; in UTC both would be today."""
    account = make_account("mumbai", timezone="Asia/Kolkata")
    _only(account, RuleKind.COST_ANOMALY)
    now = NOW.replace(hour=19, minute=0)
    _history(account, 15, at_hour=6, now=now)
    send(account, now.replace(hour=18, minute=40), cost="7.00")
    send(account, now.replace(hour=18, minute=20), cost="3.00")
    [outcome] = evaluate_rules(now=now)
    event = outcome.event
    assert event.state == "fired" and event.value == Decimal("7")
    assert event.window_start == now.replace(hour=18, minute=30) and event.window_end == now
    # Just before the local midnight, today so far holds the 18:20 request only.
    [outcome] = evaluate_rules(now=now.replace(hour=18, minute=29), force=True)
    assert outcome.verdict.value == Decimal("3") and outcome.verdict.day == now.date()


@pytest.mark.django_db
def test_error_rate_fires_above_the_threshold_with_enough_requests(acme):
    _only(acme, RuleKind.ERROR_RATE)
    send(acme, NOW - 10 * MINUTE, 26)
    send(acme, NOW - 10 * MINUTE, 3, status="error", error_code="rate_limit")
    [outcome] = evaluate_rules(now=NOW)  # 3 / 29 = 10.3%
    assert outcome.event.state == "fired" and outcome.event.value == Decimal("0.103448")
    assert outcome.event.threshold == Decimal("0.1")
    assert outcome.event.window_start == NOW.replace(minute=0) - timedelta(minutes=45)

    send(acme, NOW - 5 * MINUTE, 2)  # 3 / 31 = 9.7%
    [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.verdict.state == RuleState.OK and outcome.event.state == "recovered"


@pytest.mark.django_db
def test_error_rate_needs_the_minimum_requests_and_counts_whole_slots(acme):
    rule = _only(acme, RuleKind.ERROR_RATE)
    send(acme, NOW - 3 * MINUTE, 19, status="error")  # all errors, but 19 < 20 requests
    [outcome] = evaluate_rules(now=NOW)
    assert outcome.verdict.state == RuleState.UNKNOWN and outcome.event is None
    # 12:07 - 60 min is 11:07, but the window is counted in whole slots: from 11:15 on.
    send(acme, NOW.replace(hour=11, minute=10), 5, status="error")
    [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.verdict.state == RuleState.UNKNOWN
    send(acme, NOW.replace(hour=11, minute=15), 1)
    [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.verdict.firing and outcome.verdict.value == Decimal("0.95")
    _set(rule, params={**rule.params, "min_requests": 30, "window_minutes": 90})
    [outcome] = evaluate_rules(now=NOW, force=True)  # from 10:45: 25 requests
    assert outcome.verdict.state == RuleState.UNKNOWN and outcome.event.state == "recovered"


@pytest.mark.django_db
def test_error_rate_scoped_by_model_or_key_reads_only_those_requests(acme):
    rule = _only(acme, RuleKind.ERROR_RATE, model="gpt-4o")
    send(acme, NOW - MINUTE, 25, status="error", model="claude-3")  # another model's errors
    send(acme, NOW - MINUTE, 25, model="gpt-4o")
    [outcome] = evaluate_rules(now=NOW)
    assert outcome.verdict.state == RuleState.OK and outcome.verdict.value == 0
    _set(rule, model="", api_key="team-b")
    send(acme, NOW - MINUTE, 20, status="error", api_key="team-b", model="gpt-4o")
    [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.verdict.firing and outcome.verdict.value == 1
    _set(rule, model="gpt-4o")  # both dimensions: the slices cannot answer it
    [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.verdict.state == RuleState.UNKNOWN and "not supported" in outcome.verdict.detail


@pytest.mark.django_db
def test_token_spike_fires_on_one_large_request(acme, globex):
    _only(acme, RuleKind.TOKEN_SPIKE)
    _only(globex, RuleKind.TOKEN_SPIKE, model="gpt-4o")
    send(acme, NOW - 20 * MINUTE, 50, prompt_tokens=90_000, completion_tokens=9_000)
    send(globex, NOW - 20 * MINUTE, 1, prompt_tokens=150_000, completion_tokens=1, model="claude-3")
    outcomes = {o.rule.account_id: o for o in evaluate_rules(now=NOW)}
    assert outcomes[acme.pk].verdict.state == RuleState.OK
    assert outcomes[acme.pk].verdict.value == Decimal(99_000)
    assert outcomes[globex.pk].verdict.state == RuleState.OK  # another model than the rule's
    assert outcomes[globex.pk].verdict.value is None

    send(acme, NOW - 20 * MINUTE, 1, prompt_tokens=100_000, completion_tokens=1)
    send(globex, NOW - 20 * MINUTE, 1, prompt_tokens=120_000, completion_tokens=1, model="gpt-4o")
    outcomes = {o.rule.account_id: o for o in evaluate_rules(now=NOW, force=True)}
    assert outcomes[acme.pk].event.state == "fired" and outcomes[acme.pk].event.value == 100_001
    assert outcomes[globex.pk].event.state == "fired" and outcomes[globex.pk].event.value == 120_001
    assert outcomes[globex.pk].event.model == "gpt-4o"
    # An hour later the spike has left the window.
    outcomes = {o.rule.account_id: o for o in evaluate_rules(now=NOW + timedelta(minutes=70), force=True)}
    assert outcomes[acme.pk].event.state == "recovered"


@pytest.mark.django_db
def test_token_spike_p99_mode_compares_each_model_with_its_own_baseline(acme, django_assert_max_num_queries):
    from alerts.models import TokenBaseline
    from alerts.rules import clean_rule

    rule = _only(acme, RuleKind.TOKEN_SPIKE, params={"mode": "p99", "factor": 3, "days": 7})
    [outcome] = evaluate_rules(now=NOW)
    assert outcome.verdict.state == RuleState.UNKNOWN  # no history, no baseline
    for n in range(1, 8):  # the 7 UTC days before today
        day = (NOW - n * DAY).replace(hour=6)
        send(acme, day, 15, model="gpt-4o", prompt_tokens=1000, completion_tokens=0)
        send(acme, day, 15, model="small", prompt_tokens=100, completion_tokens=0)
    send(acme, NOW - 7 * DAY, 1, model="gpt-4o", prompt_tokens=50_000, completion_tokens=0)  # 1 in 106: above the p99
    send(acme, NOW - 8 * DAY, 1, model="small", prompt_tokens=90_000, completion_tokens=0)  # before the baseline
    send(acme, NOW - 10 * MINUTE, 1, model="gpt-4o", prompt_tokens=2500, completion_tokens=0)
    send(acme, NOW - 10 * MINUTE, 1, model="small", prompt_tokens=200, completion_tokens=0)
    TokenBaseline.objects.all().delete()  # the first pass's "no traffic" baseline
    [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.verdict.state == RuleState.OK
    assert (outcome.verdict.value, outcome.verdict.threshold) == (Decimal(2500), Decimal(3000))
    assert outcome.verdict.detail.startswith("gpt-4o: largest request 2,500 tokens")
    baselines = dict(TokenBaseline.objects.filter(account=acme).values_list("model", "p99"))
    assert baselines == {"": 0, "gpt-4o": 1000, "small": 100}

    send(acme, NOW - 5 * MINUTE, 1, model="small", prompt_tokens=400, completion_tokens=0)
    with django_assert_max_num_queries(9):  # the baseline is read, not computed again today
        [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.event.state == "fired" and (outcome.event.value, outcome.event.threshold) == (400, 300)
    assert outcome.event.message.endswith("small: largest request 400 tokens; limit 3 × p99 (100 tokens)")

    _set(rule, model="gpt-4o")  # scoped: the small model's spike is not this rule's
    [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.verdict.state == RuleState.OK and outcome.verdict.value == 2500
    # The next UTC day the baseline moves on (one day later: the 50,000 request has left it).
    [outcome] = evaluate_rules(now=NOW + DAY, force=True)
    assert TokenBaseline.objects.get(account=acme, model="gpt-4o").through == (NOW + DAY).date()

    _set(rule, model="", api_key="team-a")
    [outcome] = evaluate_rules(now=NOW, force=True)
    assert outcome.verdict.state == RuleState.UNKNOWN and "API key" in outcome.verdict.detail
    with pytest.raises(ValueError, match="scope it by a model"):
        clean_rule(RuleKind.TOKEN_SPIKE, {"mode": "p99"}, api_key="team-a")
    with pytest.raises(ValueError, match="not both"):
        clean_rule(RuleKind.ERROR_RATE, {}, model="m", api_key="team-a")
    assert clean_rule(RuleKind.BUDGET, {"amount": 3}, model="m", api_key="k")["amount"] == 3


@pytest.mark.django_db
def test_budgets_daily_and_monthly_and_by_key(acme):
    AlertRule.objects.filter(account=acme).delete()
    daily = AlertRule.objects.create(account=acme, kind=RuleKind.BUDGET, params={"amount": 5, "period": "daily"})
    keyed = AlertRule.objects.create(
        account=acme, kind=RuleKind.BUDGET, api_key="team-b", params={"amount": 2, "period": "daily"}
    )
    monthly = AlertRule.objects.create(account=acme, kind=RuleKind.BUDGET, params={"amount": 8, "period": "monthly"})
    month_start = NOW.replace(day=1, hour=0, minute=0)
    send(acme, NOW - MINUTE, 1, cost="4.00")
    send(acme, NOW - MINUTE, 1, cost="1.50", api_key="team-b")
    if month_start <= NOW - DAY:
        send(acme, NOW - DAY, 1, cost="3.00")  # yesterday: the month's, not today's
    outcomes = {o.rule.pk: o for o in evaluate_rules(now=NOW)}
    assert outcomes[daily.pk].event.value == Decimal("5.5") and outcomes[daily.pk].event.state == "fired"
    assert outcomes[keyed.pk].verdict.state == RuleState.OK and outcomes[keyed.pk].verdict.value == Decimal("1.5")
    month = Decimal("8.5") if month_start <= NOW - DAY else Decimal("5.5")
    assert outcomes[monthly.pk].verdict.value == month
    assert outcomes[monthly.pk].verdict.firing == (month > 8)
    if month > 8:
        assert outcomes[monthly.pk].event.window_start == month_start


@pytest.mark.django_db
def test_cooldown_and_recovery(acme, notified, django_capture_on_commit_callbacks):
    """Fire (notified), stay in breach (nothing), recover (notified), a new breach after the
    recovery (notified at once, though inside the cooldown of the first), stay in breach
    (nothing) until the cooldown has passed since that notification (a notified reminder)."""
    _only(acme, RuleKind.ERROR_RATE, cooldown_minutes=30)
    send(acme, NOW - MINUTE, 20, status="error")

    def run(at):
        with django_capture_on_commit_callbacks(execute=True):
            [outcome] = evaluate_rules(now=at)
        return outcome.event

    first = run(NOW)
    assert (first.state, first.notified) == ("fired", True)
    assert run(NOW + MINUTE) is None
    send(acme, NOW + MINUTE, 200)
    recovered = run(NOW + 2 * MINUTE)
    assert (recovered.state, recovered.notified) == ("recovered", True)
    send(acme, NOW + 2 * MINUTE, 100, status="error")
    again = run(NOW + 3 * MINUTE)
    assert (again.state, again.notified) == ("fired", True)
    assert run(NOW + 10 * MINUTE) is None
    assert run(NOW + 32 * MINUTE) is None  # 29 minutes after the last notification
    # 30 minutes after the last notification; the 12:06-12:09 traffic is still in the window
    reminder = run(NOW + 33 * MINUTE)
    assert (reminder.state, reminder.notified) == ("fired", True)
    assert [[e.pk for e in call] for call in notified] == [[first.pk], [recovered.pk], [again.pk], [reminder.pk]]
    assert [(e.state, e.notified) for e in _events(acme)] == [
        ("fired", True),
        ("recovered", True),
        ("fired", True),
        ("fired", True),
    ]
    assert _rule(acme, RuleKind.ERROR_RATE).last_notified_at == NOW + 33 * MINUTE


@pytest.mark.django_db
def test_a_new_breach_notifies_inside_the_cooldown_of_an_earlier_notification(acme):
    rule = _only(acme, RuleKind.ERROR_RATE, cooldown_minutes=60)
    rule.last_notified_at = NOW - 5 * MINUTE
    rule.save()
    send(acme, NOW - MINUTE, 20, status="error")
    [outcome] = evaluate_rules(now=NOW)
    assert (outcome.event.state, outcome.event.notified) == ("fired", True)
    send(acme, NOW, 500)
    [outcome] = evaluate_rules(now=NOW + MINUTE)
    assert (outcome.event.state, outcome.event.notified) == ("recovered", True)


@pytest.mark.django_db
def test_only_due_rules_are_evaluated_unless_forced(acme, settings):
    settings.METERLOG_ALERT_EVALUATION_SECONDS = 60
    assert len(evaluate_rules(now=NOW)) == 3
    assert evaluate_rules(now=NOW + timedelta(seconds=20)) == []
    assert len(evaluate_rules(now=NOW + timedelta(seconds=31))) == 3
    assert len(evaluate_rules(now=NOW + timedelta(seconds=32), force=True)) == 3
    AlertRule.objects.filter(account=acme, kind=RuleKind.BUDGET).delete()
    AlertRule.objects.filter(account=acme, kind=RuleKind.ERROR_RATE).update(enabled=False)
    assert len(evaluate_rules(now=NOW + DAY)) == 2


@pytest.mark.django_db
def test_a_broken_rule_does_not_stop_the_pass(acme):
    AlertRule.objects.filter(account=acme, kind=RuleKind.COST_ANOMALY).update(params={"days": "many"})
    outcomes = {o.rule.kind: o for o in evaluate_rules(now=NOW)}
    assert outcomes["cost_anomaly"].verdict.state == RuleState.UNKNOWN
    assert outcomes["error_rate"].verdict.state == RuleState.UNKNOWN  # no traffic: too few requests
    assert outcomes["token_spike"].verdict.state == RuleState.OK


@pytest.mark.django_db
def test_evaluate_alerts_command_prints_what_fired(acme, globex):
    send(acme, datetime.now(UTC) - MINUTE, 25, status="error")
    send(globex, datetime.now(UTC) - MINUTE, 25, status="error")
    out = StringIO()
    call_command("evaluate_alerts", "--account", "acme", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"acme: FIRED error_rate (rule {_rule(acme, RuleKind.ERROR_RATE).pk}) value 1.")
    assert "threshold 0.1" in lines[0] and "25 errors in 25 requests" in lines[0]
    assert lines[-1] == "3 rules evaluated, 1 fired or recovered."
    assert not AlertEvent.objects.filter(account=globex).exists()
    out = StringIO()
    call_command("evaluate_alerts", stdout=out)
    assert out.getvalue().splitlines()[-1] == "6 rules evaluated, 1 fired or recovered."
    with pytest.raises(Exception, match="no account with slug 'nope'"):
        call_command("evaluate_alerts", "--account", "nope")


@pytest.mark.django_db
def test_the_migration_seeds_accounts_without_rules_once(settings):
    import importlib

    from django.apps import apps

    seed = importlib.import_module("alerts.migrations.0002_default_rules").seed
    settings.METERLOG_ALERT_DEFAULT_RULES = False
    old, kept = make_account("old"), make_account("kept")
    AlertRule.objects.create(account=kept, kind=RuleKind.BUDGET, params={"amount": 5})
    seed(apps, None)
    seed(apps, None)
    assert sorted(AlertRule.objects.filter(account=old).values_list("kind", flat=True)) == [
        "cost_anomaly",
        "error_rate",
        "token_spike",
    ]
    assert list(AlertRule.objects.filter(account=kept).values_list("kind", flat=True)) == ["budget"]
