"""The maths of each alert rule kind, on figures already read (no database here).

The evaluation pass (alerts/evaluation.py) and the backtest (alerts/backtest.py) read the
figures from the analytics rollups and judge them here, so a backtest judges exactly as the
live rules do.

Parameters of each kind (`AlertRule.params`), with their defaults in DEFAULTS:

- cost_anomaly: `k` (2), `days` (14, the previous full days the mean and sample standard
  deviation are taken over), `min_history_days` (7: fewer baseline days with traffic and
  the rule cannot fire), `floor` (0: an absolute cost the day must also exceed). Judged:
  today so far and yesterday's full day, each against the `days` full days before it.
- error_rate: `threshold` (0.10), `window_minutes` (60), `min_requests` (20).
- token_spike: `mode` "absolute" with `tokens` (100,000), or "p99" with `factor` (3) and
  `days` (7): a single request above factor x the p99 of that model's requests of the
  last days.
- budget: `amount` (USD, required) and `period` "daily" or "monthly".
"""

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from alerts.models import RuleKind, RuleState
from logs.templatetags.meterlog_format import format_usd

DEFAULTS: dict[str, dict] = {
    RuleKind.COST_ANOMALY: {"k": 2.0, "days": 14, "min_history_days": 7, "floor": 0.0},
    RuleKind.ERROR_RATE: {"threshold": 0.10, "window_minutes": 60, "min_requests": 20},
    RuleKind.TOKEN_SPIKE: {"mode": "absolute", "tokens": 100_000, "factor": 3.0, "days": 7},
    RuleKind.BUDGET: {"amount": None, "period": "daily"},
}

# Bounds of each numeric parameter (inclusive), for forms and the API.
BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    RuleKind.COST_ANOMALY: {"k": (0.5, 10), "days": (3, 90), "min_history_days": (1, 90), "floor": (0, 1e9)},
    RuleKind.ERROR_RATE: {"threshold": (0.001, 1), "window_minutes": (15, 24 * 60), "min_requests": (1, 1e9)},
    RuleKind.TOKEN_SPIKE: {"tokens": (1, 1e9), "factor": (1, 100), "days": (1, 30)},
    RuleKind.BUDGET: {"amount": (0.01, 1e9)},
}
CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    RuleKind.TOKEN_SPIKE: {"mode": ("absolute", "p99")},
    RuleKind.BUDGET: {"period": ("daily", "monthly")},
}


def params_of(kind: str, params: Mapping | None) -> dict:
    """The rule's parameters with the defaults filled in."""
    return {**DEFAULTS[kind], **(params or {})}


def clean_params(kind: str, params: Mapping) -> dict:
    """Validated parameters of a kind (ValueError naming the parameter otherwise); unknown
    names are refused, numbers are bounded, missing ones take the default."""
    if kind not in DEFAULTS:
        raise ValueError(f"unknown rule kind {kind!r}")
    unknown = set(params) - set(DEFAULTS[kind])
    if unknown:
        raise ValueError(f"unknown parameter {sorted(unknown)[0]!r} for {kind}")
    cleaned = params_of(kind, params)
    for name, allowed in CHOICES.get(kind, {}).items():
        if cleaned[name] not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}")
    for name, (low, high) in BOUNDS.get(kind, {}).items():
        value = cleaned[name]
        if value is None:
            raise ValueError(f"{name} is required")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise ValueError(f"{name} must be between {low:g} and {high:g}")
        cleaned[name] = int(number) if isinstance(DEFAULTS[kind][name], int) else number
    return cleaned


@dataclass(frozen=True)
class Verdict:
    state: str  # RuleState
    value: Decimal | None
    threshold: Decimal | None
    detail: str = ""
    # cost_anomaly: the local day judged (today so far or yesterday).
    day: date | None = None

    @property
    def firing(self) -> bool:
        return self.state == RuleState.FIRING


def _dec(value) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def cost_anomaly(params: Mapping, daily_costs: Mapping[date, Decimal], today: date) -> Verdict:
    """`daily_costs`: cost per local day with traffic (a missing day cost nothing), at least
    the `days` + 1 days before `today`, and today so far. Fires when today or yesterday is
    above mean + k·σ of the `days` full days before it (and above `floor`)."""
    p = params_of(RuleKind.COST_ANOMALY, params)
    worst: Verdict | None = None
    for day, label in ((today, "today so far"), (today - timedelta(days=1), "yesterday")):
        baseline_days = [day - timedelta(days=n) for n in range(1, int(p["days"]) + 1)]
        history = sum(1 for d in baseline_days if d in daily_costs)
        if history < int(p["min_history_days"]):
            continue
        baseline = [float(daily_costs.get(d, 0)) for d in baseline_days]
        mean = statistics.fmean(baseline)
        sigma = statistics.stdev(baseline) if len(baseline) > 1 else 0.0
        threshold = max(mean + float(p["k"]) * sigma, float(p["floor"]))
        value = Decimal(daily_costs.get(day, 0))
        verdict = Verdict(
            RuleState.FIRING if float(value) > threshold else RuleState.OK,
            value,
            _dec(round(threshold, 12)),
            f"{label}: {format_usd(value)} against mean {format_usd(mean)} + {p['k']:g}σ (σ {format_usd(sigma)}) "
            f"of {len(baseline)} days",
            day,
        )
        if worst is None or (verdict.firing and not worst.firing):
            worst = verdict
    if worst is None:
        return Verdict(RuleState.UNKNOWN, None, None, f"fewer than {p['min_history_days']} days of history")
    return worst


def error_rate(params: Mapping, *, requests: int, errors: int) -> Verdict:
    p = params_of(RuleKind.ERROR_RATE, params)
    threshold = _dec(p["threshold"])
    if requests < int(p["min_requests"]):
        return Verdict(
            RuleState.UNKNOWN, None, threshold, f"{requests} requests in the window, fewer than {p['min_requests']}"
        )
    rate = Decimal(errors) / Decimal(requests)
    state = RuleState.FIRING if rate > threshold else RuleState.OK
    return Verdict(state, rate.quantize(Decimal("0.000001")), threshold, f"{errors} errors in {requests} requests")


def token_spike(params: Mapping, *, max_tokens: int | None, p99: float | None = None) -> Verdict:
    """`max_tokens`: the largest single request of the window (None: no request); `p99`:
    the model's p99 of total tokens over the baseline days (mode "p99" only)."""
    p = params_of(RuleKind.TOKEN_SPIKE, params)
    if p["mode"] == "p99":
        if not p99:
            return Verdict(RuleState.UNKNOWN, _dec(max_tokens), None, "no baseline of request sizes yet")
        threshold = Decimal(str(round(float(p["factor"]) * p99, 3)))
        detail = f"{p['factor']:g} × p99 ({p99:,.0f} tokens)"
    else:
        threshold = Decimal(int(p["tokens"]))
        detail = f"{int(p['tokens']):,} tokens"
    if max_tokens is None:
        return Verdict(RuleState.OK, None, threshold, "no requests in the window")
    state = RuleState.FIRING if max_tokens > threshold else RuleState.OK
    return Verdict(state, Decimal(max_tokens), threshold, f"largest request {max_tokens:,} tokens; limit {detail}")


def clean_scope(kind: str, *, model: str, api_key: str) -> None:
    """ValueError for a scope the rollups cannot answer: error rate and token spike read
    15-minute slices, which hold one dimension at a time (a model or an API key)."""
    if model and api_key and kind in (RuleKind.ERROR_RATE, RuleKind.TOKEN_SPIKE):
        raise ValueError("scope this rule by a model or by an API key, not both")


def clean_rule(kind: str, params: Mapping, *, model: str = "", api_key: str = "") -> dict:
    """`clean_params` and `clean_scope` together; a p99 token spike is judged per model, so it
    cannot be scoped by an API key."""
    cleaned = clean_params(kind, params)
    clean_scope(kind, model=model, api_key=api_key)
    if kind == RuleKind.TOKEN_SPIKE and cleaned["mode"] == "p99" and api_key:
        raise ValueError("a p99 token spike compares each model with its own sizes: scope it by a model, not a key")
    return cleaned


def budget(params: Mapping, *, spent: Decimal) -> Verdict:
    p = params_of(RuleKind.BUDGET, params)
    amount = _dec(p["amount"])
    if amount is None:
        return Verdict(RuleState.UNKNOWN, spent, None, "no amount set")
    state = RuleState.FIRING if spent > amount else RuleState.OK
    period = "today" if p["period"] == "daily" else "this month"
    return Verdict(state, spent, amount, f"{format_usd(spent)} spent {period} of {format_usd(amount)}")
