"""The figures a pass of rules needs, read from the analytics rollups in a bounded number of
queries (analytics.monitoring: one per source and projection for all the rules' accounts),
and each rule judged on them by alerts.rules.

Which figure each kind reads:
- cost_anomaly, budget (daily): cost per local day (the zone of the account's daily rows)
  from UsageDay, in the projection that keeps the rule's scope (none, model, API key, both);
- budget (monthly): the month to date, the current local month's monthly row;
- error_rate: requests and errors of the window (`window_minutes`, counted in whole
  15-minute slots, the slot in progress included: see analytics.monitoring.window_start)
  from UsageQuarter, or the model's / API key's UsageSlice rows;
- token_spike: the largest single request's total tokens in the last TOKEN_SPIKE_WINDOW_MINUTES
  from the same slots; in mode "p99" each model's largest request (the model slices)
  against `factor` x that model's p99 of the `days` UTC days before today (alerts.baselines,
  refreshed once a day from raw rows); the model furthest above (or nearest to) its limit
  is reported. Mode "p99" by API key is refused (the key slices do not split by model).

A rule scoped by a model and an API key together cannot read error rate or token spikes
(the slices hold one dimension): alerts.rules.clean_scope refuses it, and such a rule made
another way stays "unknown".
"""

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from alerts import rules as maths
from alerts.baselines import token_baselines
from alerts.models import AlertRule, RuleKind, RuleState
from analytics import monitoring
from analytics.models import Projection

# The window a token spike is looked for in: a spike keeps its rule firing this long.
TOKEN_SPIKE_WINDOW_MINUTES = 60
_WINDOW_KINDS = (RuleKind.ERROR_RATE, RuleKind.TOKEN_SPIKE)


@dataclass
class Judged:
    verdict: maths.Verdict
    window_start: datetime
    window_end: datetime


@dataclass
class Figures:
    states: dict[int, monitoring.AccountRollups]
    days: dict[int, dict] = field(default_factory=dict)  # projection -> daily_totals
    months: dict[int, dict] = field(default_factory=dict)  # projection -> monthly_totals
    slots: dict[str | None, dict] = field(default_factory=dict)  # column -> window_slots
    baselines: dict[tuple[int, int], dict] = field(default_factory=dict)  # (account, days) -> {model: p99}
    model_slots: dict[int, dict] = field(default_factory=dict)  # account -> {model: slots}


def projection_of(rule: AlertRule) -> int:
    if rule.model and rule.api_key:
        return Projection.FULL
    if rule.model:
        return Projection.MODEL
    return Projection.KEY if rule.api_key else Projection.TOTAL


def window_column(rule: AlertRule) -> str | None:
    return "model" if rule.model else ("api_key" if rule.api_key else None)


def _group(rule: AlertRule) -> tuple[int, str, str]:
    return (rule.account_id, rule.model, rule.api_key)


def _window_minutes(rule: AlertRule, params: dict) -> int:
    if rule.kind == RuleKind.ERROR_RATE:
        return int(params["window_minutes"])
    return TOKEN_SPIKE_WINDOW_MINUTES


def _params(rule: AlertRule) -> dict:
    return maths.params_of(rule.kind, rule.params if isinstance(rule.params, dict) else {})


def _day_span(rule: AlertRule, params: dict) -> int:
    """How many days before today the rule's daily figures reach back."""
    if rule.kind == RuleKind.COST_ANOMALY:
        return int(params["days"]) + 1  # yesterday's baseline too
    return 0


def read_figures(rules: list[AlertRule], now: datetime) -> Figures:
    """Every figure the rules need: one query for the rollup states, one per projection of
    daily rows, one per projection of monthly rows, one per window source."""
    accounts = {rule.account_id: rule.account for rule in rules}
    figures = Figures(states=monitoring.rollup_states(accounts.values()))
    daily, monthly, windows = defaultdict(list), defaultdict(list), defaultdict(list)
    p99_wanted: dict[int, set[int]] = defaultdict(set)
    for rule in rules:
        try:
            params = _params(rule)
            reach = _window_minutes(rule, params) if rule.kind in _WINDOW_KINDS else _day_span(rule, params)
        except (KeyError, TypeError, ValueError):
            continue  # judged "unknown" by `judge`, which meets the same error
        if rule.kind == RuleKind.COST_ANOMALY or (rule.kind == RuleKind.BUDGET and params["period"] != "monthly"):
            daily[projection_of(rule)].append((rule, reach))
        elif rule.kind == RuleKind.BUDGET:
            monthly[projection_of(rule)].append((rule, reach))
        elif rule.kind in _WINDOW_KINDS and not (rule.model and rule.api_key):
            if _p99(rule, params):
                if rule.api_key:
                    continue
                p99_wanted[int(params["days"])].add(rule.account_id)
                windows["model"].append((rule, reach))
            else:
                windows[window_column(rule)].append((rule, reach))

    def narrowing(group):
        scoped = [rule for rule, _ in group]
        models = {r.model for r in scoped} if all(r.model for r in scoped) else None
        keys = {r.api_key for r in scoped} if all(r.api_key for r in scoped) else None
        return {accounts[r.account_id] for r in scoped}, models, keys

    for projection, group in daily.items():
        members, models, keys = narrowing(group)
        todays = [figures.states[rule.account_id].today(now) for rule, _ in group]
        first = min(today - timedelta(days=days) for today, (_, days) in zip(todays, group, strict=True))
        figures.days[projection] = monitoring.daily_totals(
            members, first_day=first, last_day=max(todays), projection=projection, models=models, api_keys=keys
        )
    for projection, group in monthly.items():
        members, models, keys = narrowing(group)
        months = {figures.states[rule.account_id].today(now).replace(day=1) for rule, _ in group}
        figures.months[projection] = monitoring.monthly_totals(
            members, months=months, projection=projection, models=models, api_keys=keys
        )
    for column, group in windows.items():
        members, _, _ = narrowing(group)
        values = None if column is None else {getattr(rule, column) for rule, _ in group}
        if values is not None and "" in values:  # an unscoped p99 rule reads every model
            values = None
        since = min(monitoring.window_start(now, minutes) for _, minutes in group)
        figures.slots[column] = monitoring.window_slots(members, since=since, column=column, values=values)
    for (account_id, model), slots in figures.slots.get("model", {}).items():
        figures.model_slots.setdefault(account_id, {})[model] = slots
    if p99_wanted:
        figures.baselines = token_baselines(p99_wanted, accounts, now)
    return figures


def _p99(rule: AlertRule, params: dict) -> bool:
    return rule.kind == RuleKind.TOKEN_SPIKE and params.get("mode") == "p99"


def judge(rule: AlertRule, figures: Figures, now: datetime) -> Judged:
    """The rule's verdict on the figures, and the UTC time the figure covers."""
    state = figures.states[rule.account_id]
    today = state.today(now)
    day_start, _ = monitoring.day_bounds(today, state.zone)
    try:
        params = _params(rule)
        if rule.kind in _WINDOW_KINDS:
            return _judge_window(rule, params, figures, now)
        if rule.kind == RuleKind.COST_ANOMALY:
            days = figures.days[projection_of(rule)].get(_group(rule), {})
            verdict = maths.cost_anomaly(params, {day: total.cost for day, total in days.items()}, today)
            start, end = monitoring.day_bounds(verdict.day or today, state.zone)
            return Judged(verdict, start, min(end, now))
        if rule.kind == RuleKind.BUDGET:
            if params["period"] == "monthly":
                month = today.replace(day=1)
                total = figures.months[projection_of(rule)].get(_group(rule), {}).get(month)
                start, _ = monitoring.day_bounds(month, state.zone)
            else:
                total = figures.days[projection_of(rule)].get(_group(rule), {}).get(today)
                start = day_start
            verdict = maths.budget(params, spent=total.cost if total else Decimal(0))
            return Judged(verdict, start, now)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        # A rule with broken parameters (made outside the forms) must not stop the pass.
        return Judged(maths.Verdict(RuleState.UNKNOWN, None, None, f"cannot judge: {exc!r}"[:200]), day_start, now)
    return Judged(maths.Verdict(RuleState.UNKNOWN, None, None, f"unknown kind {rule.kind}"), day_start, now)


def _judge_window(rule: AlertRule, params: dict, figures: Figures, now: datetime) -> Judged:
    since = monitoring.window_start(now, _window_minutes(rule, params))
    if rule.model and rule.api_key:
        verdict = maths.Verdict(RuleState.UNKNOWN, None, None, "scoped by a model and an API key: not supported")
        return Judged(verdict, since, now)
    p99 = _p99(rule, params)
    if p99 and rule.api_key:
        verdict = maths.Verdict(RuleState.UNKNOWN, None, None, "p99 mode by API key: not supported")
        return Judged(verdict, since, now)
    column = "model" if p99 else window_column(rule)
    complete = figures.states[rule.account_id].complete_since(column)
    if complete is not None and complete > since:
        verdict = maths.Verdict(RuleState.UNKNOWN, None, None, f"{column} slices are complete only from {complete}")
        return Judged(verdict, since, now)
    if p99:
        return Judged(_judge_p99(rule, params, figures, since), since, now)
    value = getattr(rule, column) if column else ""
    total = monitoring.window_total(figures.slots[column].get((rule.account_id, value), ()), since)
    if rule.kind == RuleKind.ERROR_RATE:
        verdict = maths.error_rate(params, requests=total.requests, errors=total.errors)
    else:
        verdict = maths.token_spike(params, max_tokens=total.max_total_tokens, p99=None)
    return Judged(verdict, since, now)


def _judge_p99(rule: AlertRule, params: dict, figures: Figures, since: datetime) -> maths.Verdict:
    """Each model's largest request of the window against factor x its p99; the model with
    the highest ratio is reported (a firing one if any)."""
    baseline = figures.baselines.get((rule.account_id, int(params["days"])), {})
    judged = []
    for model, slots in figures.model_slots.get(rule.account_id, {}).items():
        if rule.model and model != rule.model:
            continue
        total = monitoring.window_total(slots, since)
        p99 = baseline.get(model)
        if total.max_total_tokens is None or not p99:
            continue
        verdict = maths.token_spike(params, max_tokens=total.max_total_tokens, p99=float(p99))
        judged.append((verdict.firing, verdict.value / verdict.threshold, model, verdict))
    if judged:
        _, _, model, verdict = max(judged, key=lambda item: item[:2])
        return replace(verdict, detail=f"{model}: {verdict.detail}")
    if any(not rule.model or model == rule.model for model in baseline):
        return maths.Verdict(RuleState.OK, None, None, "no request of a model with a baseline in the window")
    return maths.token_spike(params, max_tokens=None, p99=None)
