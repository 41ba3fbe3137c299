"""Reads of alert rules, events and deliveries for the console pages: always of one account.
(The API's reads are in alerts/selectors.py.)"""

from django.db.models import Q, QuerySet
from django.http import Http404

from alerts.models import AlertEvent, AlertRule, Delivery
from console.models import Account

EVENTS_PAGE = 25


def rules_of(*, account: Account) -> QuerySet:
    return AlertRule.objects.filter(account=account).order_by("kind", "name", "pk")


def rule_of(*, account: Account, pk: int) -> AlertRule:
    """The account's rule, or 404: another account's rule id is no different from a missing one."""
    rule = AlertRule.objects.filter(account=account, pk=pk).select_related("account").first()
    if rule is None:
        raise Http404("No such alert rule")
    return rule


def events_page(*, account: Account, before: int | None = None) -> tuple[list[AlertEvent], int | None]:
    """One page of the account's events, newest first, and the id to pass as `before` for the
    next page, or None on the last. Keyset on (created_at, id), the order of the index
    alertevent_account_time; `before` names the last event of the previous page."""
    events = AlertEvent.objects.filter(account=account).select_related("rule", "account")
    if before is not None:
        last = AlertEvent.objects.filter(account=account, pk=before).values_list("created_at", flat=True).first()
        if last is None:
            return [], None
        events = events.filter(Q(created_at__lt=last) | Q(created_at=last, pk__lt=before))
    page = list(events.order_by("-created_at", "-pk")[: EVENTS_PAGE + 1])
    if len(page) > EVENTS_PAGE:
        page = page[:EVENTS_PAGE]
        return page, page[-1].pk
    return page, None


def recent_deliveries(*, rule: AlertRule, limit: int = 10) -> list[Delivery]:
    return list(Delivery.objects.filter(account_id=rule.account_id, rule=rule).order_by("-pk")[:limit])
