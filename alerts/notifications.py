"""Sending alert notifications: `notify(events)` after an evaluation pass, test sends from the
rule page, and the one attempt a delivery task makes.

Every send is a Delivery row (channel, target, attempts, status, last error). The evaluation
pass calls `notify` after its commit; the sends themselves run in Celery
(alerts.delivery_tasks.send_delivery), with retries, so a slow or dead receiver never holds
up evaluation.
"""

import logging
import smtplib

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerts import webhooks
from alerts.models import AlertEvent, AlertRule, Channel, Delivery, DeliveryStatus
from alerts.notices import Notice, email_parts, webhook_body
from console.mail import send_mail_message
from console.models import Membership, Role
from console.sealed import SealedError, unseal

log = logging.getLogger(__name__)

# Delivery.target holds the recipients of one message; a longer list is split into messages.
_TARGET_LENGTH = 500


class DeliveryFailed(Exception):
    """One attempt failed; `retry` says whether another attempt can help."""

    def __init__(self, message: str, *, retry: bool = True):
        super().__init__(message)
        self.retry = retry


# --- recipients and deliveries ---------------------------------------------------------------


def email_recipients(rule: AlertRule) -> list[str]:
    """The rule's chosen members (only while they are members of its account) and addresses;
    with none chosen, the account's owners and admins. Each address once, in a stable order."""
    members = Membership.objects.filter(account_id=rule.account_id).exclude(user__email="")
    chosen_users = list(rule.email_users.values_list("pk", flat=True)) if rule.pk else []
    addresses = [address.strip() for address in (rule.email_addresses or []) if address.strip()]
    if chosen_users:
        emails = list(members.filter(user_id__in=chosen_users).values_list("user__email", flat=True))
    elif not addresses:
        emails = list(members.filter(Q(role=Role.OWNER) | Q(role=Role.ADMIN)).values_list("user__email", flat=True))
    else:
        emails = []
    return list(dict.fromkeys(sorted(emails, key=str.lower) + addresses))


def _split(addresses: list[str]) -> list[list[str]]:
    groups, current = [], []
    for address in addresses:
        if current and len(", ".join([*current, address])) > _TARGET_LENGTH:
            groups.append(current)
            current = []
        current.append(address)
    return [*groups, current] if current else groups


def planned_deliveries(rule: AlertRule, event: AlertEvent | None = None, *, is_test: bool = False) -> list[Delivery]:
    """Unsaved Delivery rows of the rule's channels: one per mail message, one webhook."""
    rows = []
    common = {"account_id": rule.account_id, "rule": rule, "event": event, "is_test": is_test}
    if rule.email_enabled:
        groups = _split(email_recipients(rule))
        rows += [Delivery(channel=Channel.EMAIL, target=", ".join(group), **common) for group in groups]
    if rule.webhook_url:
        rows.append(Delivery(channel=Channel.WEBHOOK, target=rule.webhook_url, **common))
    return rows


def notify(events: list[AlertEvent]) -> list[Delivery]:
    """Create the deliveries of the events that are to be sent (notified=True) and queue
    their sends once committed. Called by the evaluation pass after its commit."""
    from alerts.delivery_tasks import send_delivery  # the task module imports this one

    rows = []
    for event in events:
        if not event.notified or event.rule is None:
            continue
        rows += planned_deliveries(event.rule, event)
    if not rows:
        return []
    with transaction.atomic():
        Delivery.objects.bulk_create(rows)
        ids = [row.pk for row in rows]
        transaction.on_commit(lambda: [send_delivery.delay(pk) for pk in ids])
    return rows


# --- one attempt --------------------------------------------------------------------------------


def _notice(delivery: Delivery) -> Notice:
    if delivery.event_id is not None:
        return Notice.of_event(delivery.event)
    return Notice.test_of(delivery.rule)


def _send(delivery: Delivery) -> None:
    notice = _notice(delivery)
    if delivery.channel == Channel.EMAIL:
        subject, text, html = email_parts(notice)
        recipients = [address.strip() for address in delivery.target.split(",") if address.strip()]
        try:
            sent = send_mail_message(to=recipients, subject=subject, text=text, html=html)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"every recipient refused: {', '.join(exc.recipients)}"[:300], retry=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"mail: {type(exc).__name__}: {exc}"[:300]) from None
        if not sent:
            raise DeliveryFailed("the mail backend sent nothing")
        return
    rule = delivery.rule
    if rule is None or not rule.webhook_secret_sealed:
        raise DeliveryFailed("the rule or its webhook secret is gone", retry=False)
    try:
        secret = unseal(rule.webhook_secret_sealed)
    except SealedError as exc:
        raise DeliveryFailed(str(exc), retry=False) from None
    try:
        webhooks.post(delivery.target, webhook_body(notice), secret)
    except webhooks.WebhookError as exc:
        raise DeliveryFailed(str(exc), retry=exc.retry) from None


def attempt_delivery(delivery_id: int, *, final: bool) -> Delivery | None:
    """One try of a pending delivery. The try is claimed with a conditional update of
    `attempts`, so two workers given the same message never both send it. On failure
    DeliveryFailed is raised (for the task to retry) unless this was the `final` try or
    retrying cannot help; then the delivery is marked failed."""
    delivery = (
        Delivery.objects.select_related("rule", "event", "event__account", "rule__account")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return delivery
    claimed = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts).update(
        attempts=delivery.attempts + 1
    )
    if claimed != 1:
        return None
    delivery.attempts += 1
    try:
        _send(delivery)
    except DeliveryFailed as exc:
        delivery.last_error = str(exc)[:500]
        give_up = final or not exc.retry
        if give_up:
            delivery.status = DeliveryStatus.FAILED
        delivery.save(update_fields=["last_error", "status"])
        log.warning("alert delivery %s (%s) try %d failed: %s", delivery.pk, delivery.channel, delivery.attempts, exc)
        if not give_up:
            raise
        return delivery
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = timezone.now()
    delivery.save(update_fields=["status", "sent_at"])
    return delivery


def send_test(rule: AlertRule, channel: str) -> list[Delivery]:
    """Send a test notification to one channel of the rule now (one try each, no retry) and
    return its deliveries with their outcome, for the page to show."""
    rows = [row for row in planned_deliveries(rule, is_test=True) if row.channel == channel]
    results = []
    for row in rows:
        row.save()
        results.append(attempt_delivery(row.pk, final=True))
    return results
