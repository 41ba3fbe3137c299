"""One evaluation pass: every due, enabled rule judged on figures read from the rollups, its
state saved, an AlertEvent for each rule that fired or recovered, and the events to send
handed to alerts.notifications.notify after the transaction commits.

The number of queries does not depend on the number of rules or accounts: one to claim the
due rules (with their accounts and the last fired event's `notified`), the figures
(alerts.figures: rollup states 1, daily rows up to 4, monthly rows up to 4, window slots up
to 3, token baselines 1 when a rule is in p99 mode, plus once a UTC day their refresh from
raw rows), one UPDATE of every rule's state, one INSERT of the events (on SQLite in
batches of ~70: its 999-parameter limit).

Notifying, and the cooldown (`cooldown_minutes`, between two notifications of a rule):
- a rule that starts firing records a "fired" event and notifies (after a recovery too: a
  new breach is news, whatever the cooldown);
- a rule that stays in breach records nothing until the cooldown has passed since its last
  notification; then a new notified "fired" event reminds;
- a rule that leaves the breach (to "ok", or "unknown": too few requests or days to judge)
  records a "recovered" event, notified when the breach's last fired event was.

Passes may overlap (beat and `manage.py evaluate_alerts`): on PostgreSQL a pass claims its
rules with FOR UPDATE SKIP LOCKED, so a rule is judged by one pass at a time, and a rule
evaluated less than half an interval ago is not due.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from alerts import notifications
from alerts.figures import judge, read_figures
from alerts.models import AlertEvent, AlertRule, EventState, RuleState
from alerts.rules import Verdict
from console.models import Account

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    rule: AlertRule
    verdict: Verdict
    event: AlertEvent | None


def due_rules(*, now: datetime, account: Account | None = None, force: bool = False):
    """The enabled rules due at `now` (all enabled ones with `force`), with their accounts."""
    rules = AlertRule.objects.filter(enabled=True).select_related("account")
    if account is not None:
        rules = rules.filter(account=account)
    if not force:
        half = timedelta(seconds=settings.METERLOG_ALERT_EVALUATION_SECONDS / 2)
        rules = rules.filter(Q(last_evaluated_at__isnull=True) | Q(last_evaluated_at__lte=now - half))
    last_fired = AlertEvent.objects.filter(
        account=OuterRef("account"), rule=OuterRef("pk"), state=EventState.FIRED
    ).order_by("-created_at", "-pk")
    return rules.annotate(last_fired_notified=Subquery(last_fired.values("notified")[:1])).order_by("pk")


def evaluate_rules(
    *, now: datetime | None = None, account: Account | None = None, force: bool = False
) -> list[Outcome]:
    """Run one pass; returns every rule's outcome (`event` set where it fired or recovered)."""
    now = now or timezone.now()
    with transaction.atomic():
        rules = due_rules(now=now, account=account, force=force)
        if connection.features.has_select_for_update_skip_locked:
            rules = rules.select_for_update(skip_locked=True, of=("self",))
        rules = list(rules)
        if not rules:
            return []
        figures = read_figures(rules, now)
        outcomes = []
        for rule in rules:
            judged = judge(rule, figures, now)
            event = _transition(rule, judged.verdict, now)
            if event is not None:
                event.window_start, event.window_end = judged.window_start, judged.window_end
            outcomes.append(Outcome(rule, judged.verdict, event))
        _save_states(rules, now)
        events = [outcome.event for outcome in outcomes if outcome.event is not None]
        AlertEvent.objects.bulk_create(events)
        to_send = [event for event in events if event.notified]
        if to_send:
            transaction.on_commit(lambda: notifications.notify(to_send))
    fired = sum(1 for event in events if event.state == EventState.FIRED)
    log.info("alert pass: %s rules, %s fired, %s recovered", len(rules), fired, len(events) - fired)
    return outcomes


def _cooled(rule: AlertRule, now: datetime) -> bool:
    return rule.last_notified_at is None or now - rule.last_notified_at >= timedelta(minutes=rule.cooldown_minutes)


def _transition(rule: AlertRule, verdict: Verdict, now: datetime) -> AlertEvent | None:
    """The event of the rule's change of state (None: nothing to record), with the rule's
    state fields updated in memory."""
    was_firing = rule.state == RuleState.FIRING
    event_state = notified = None
    # Issue 16: a rule in breach notifies again only once it has recovered or the cooldown
    # has passed since its last notification; a new breach after a recovery notifies at once.
    if verdict.firing and (not was_firing or _cooled(rule, now)):
        event_state, notified = EventState.FIRED, True
    elif was_firing and not verdict.firing:
        event_state, notified = EventState.RECOVERED, bool(getattr(rule, "last_fired_notified", False))
    rule.state = verdict.state
    rule.last_value, rule.last_threshold, rule.last_evaluated_at = verdict.value, verdict.threshold, now
    rule._notified_now = bool(notified and event_state == EventState.FIRED)
    if rule._notified_now:
        rule.last_notified_at = now
    if event_state is None:
        return None
    return AlertEvent(
        account_id=rule.account_id,
        rule=rule,
        kind=rule.kind,
        state=event_state,
        value=verdict.value,
        threshold=verdict.threshold,
        model=rule.model,
        api_key=rule.api_key,
        message=f"{rule}: {verdict.detail}"[:500],
        created_at=now,
        notified=notified,
    )


def _decimal_text(value) -> str | None:
    return None if value is None else format(value, "f")


def _save_states(rules: list[AlertRule], now: datetime) -> None:
    """Every rule's state, value, threshold and times in one UPDATE (the rows as one JSON
    parameter), whatever the number of rules: bulk_update batches by SQLite's parameter limit."""
    rows = [
        {
            "id": rule.pk,
            "state": rule.state,
            "value": _decimal_text(rule.last_value),
            "threshold": _decimal_text(rule.last_threshold),
            "notified": 1 if rule._notified_now else 0,
        }
        for rule in rules
    ]
    table = AlertRule._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value(now)
    assignments = (
        "state = v.state, last_value = v.value, last_threshold = v.threshold, last_evaluated_at = %s, "
        "last_notified_at = CASE WHEN v.notified = 1 THEN %s ELSE last_notified_at END"
    )
    if connection.vendor == "postgresql":
        sql = (
            f"UPDATE {table} SET {assignments} FROM jsonb_to_recordset(%s::jsonb) "
            "AS v(id bigint, state text, value numeric, threshold numeric, notified int) "
            f"WHERE {table}.id = v.id"
        )
    else:
        sql = (
            f"UPDATE {table} SET {assignments} FROM (SELECT json_extract(value, '$.id') AS id, "
            "json_extract(value, '$.state') AS state, json_extract(value, '$.value') AS value, "
            "json_extract(value, '$.threshold') AS threshold, json_extract(value, '$.notified') AS notified "
            f"FROM json_each(%s)) AS v WHERE {table}.id = v.id"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [stamp, stamp, json.dumps(rows)])
