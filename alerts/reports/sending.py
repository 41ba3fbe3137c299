"""Sending each subscription's report exactly once per period.

1. claim: `UPDATE subscription SET last_period_start = P WHERE pk = ? AND active AND
   (last_period_start IS NULL OR last_period_start < P)`, in one transaction with the
   SentReport row of that period (unique per subscription and period) holding the whole
   mail. Only the worker whose update changed the row goes on: a second beat tick, a
   retry or another worker finds the period taken and does nothing.
2. deliver: a try claims the SentReport (`sending_since`, another conditional update, so
   two workers never send one row at once), sends the kept mail, and sets `sent_at`. A
   failed try clears `sending_since` and keeps the error; the next tick sends the same row
   again (up to MAX_ATTEMPTS tries), never a second row. A try whose worker died is taken
   over after SENDING_LEASE.

Once the SMTP server accepted a mail, only a crash before `sent_at` is written can make a
later try send it again: delivery is exactly once up to that window.
"""

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts.models import Frequency, ReportSubscription, SentReport
from alerts.reports.builder import ReportScope, UsageReport, build_report
from alerts.reports.email import render_report_email
from alerts.reports.periods import last_full_period, report_period, send_moment
from console.mail import send_mail_message
from console.models import Account, Membership

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Longer than a send can take (EMAIL_TIMEOUT is 10 s per SMTP step): an older claim is a
# worker that died mid-send.
SENDING_LEASE = timedelta(minutes=10)


@dataclass
class SendSummary:
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, other: "SendSummary") -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.skipped += other.skipped


def due_period(subscription: ReportSubscription, *, now: datetime, ignore_hour: bool = False) -> tuple | None:
    """(first day, last day) of the period the subscription is due to send at `now`, or None."""
    zone = subscription.account.zone
    first, last = last_full_period(subscription.frequency, now=now, zone=zone)
    if subscription.last_period_start is not None and subscription.last_period_start >= first:
        return None
    if not ignore_hour and now < send_moment(last, subscription.hour, zone):
        return None
    return first, last


def first_period_to_skip(subscription: ReportSubscription, *, now: datetime) -> date | None:
    """For a new subscription: the start of the last full period when its send time has
    passed already (so it is not sent at once; the first mail is the next period's)."""
    if due_period(subscription, now=now) is None:
        return None
    return last_full_period(subscription.frequency, now=now, zone=subscription.account.zone)[0]


def build_for_subscription(subscription: ReportSubscription, first: date, last: date) -> UsageReport:
    scope = ReportScope(subscription.account, model=subscription.model, api_key=subscription.api_key)
    return build_report(scope, report_period(first, last, subscription.account.zone, subscription.frequency))


def claim_period(subscription: ReportSubscription, report: UsageReport) -> SentReport | None:
    """Claim the report's period for the subscription and keep the mail as a SentReport,
    both or neither; None when the period was claimed already."""
    first = report.first_day
    mail = render_report_email(report, frequency=subscription.frequency, subscription=subscription)
    try:
        with transaction.atomic():
            claimed = (
                ReportSubscription.objects.filter(pk=subscription.pk, active=True)
                .filter(Q(last_period_start__isnull=True) | Q(last_period_start__lt=first))
                .update(last_period_start=first)
            )
            if claimed != 1:
                return None
            return SentReport.objects.create(
                account=subscription.account, subscription=subscription, frequency=subscription.frequency,
                period_start=first, period_end=report.last_day, model=subscription.model,
                api_key=subscription.api_key, recipients=[subscription.user.email], subject=mail.subject,
                html=mail.html, text=mail.text, csv_name=mail.attachments[0][0],
                csv=mail.attachments[0][1].decode(),
            )  # fmt: skip
    except IntegrityError:
        # The period's row exists although the claim went through (last_period_start was
        # moved back by hand): the existing row stands, no second one.
        return None


def deliver(sent_id: int, *, now: datetime | None = None) -> bool | None:
    """One try at sending a kept report: True sent, False failed (kept for a retry), None
    when another worker holds it or it is sent already."""
    now = now or timezone.now()
    claimed = (
        SentReport.objects.filter(pk=sent_id, sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
        .filter(Q(sending_since__isnull=True) | Q(sending_since__lt=now - SENDING_LEASE))
        .update(sending_since=now, attempts=F("attempts") + 1)
    )
    if claimed != 1:
        return None
    sent = SentReport.objects.get(pk=sent_id)
    attachments = [(sent.csv_name, sent.csv.encode(), "text/csv")] if sent.csv_name else []
    try:
        send_mail_message(
            to=sent.recipients, subject=sent.subject, text=sent.text, html=sent.html, attachments=attachments
        )
    except Exception as exc:  # any SMTP or network failure: kept for the next try
        log.warning("report %s to %s not sent (try %s): %s", sent.pk, sent.recipients, sent.attempts, exc)
        SentReport.objects.filter(pk=sent_id).update(sending_since=None, last_error=str(exc)[:500] or repr(exc))
        return False
    SentReport.objects.filter(pk=sent_id).update(sent_at=timezone.now(), sending_since=None, last_error="")
    return True


def retry_unsent(*, now: datetime, account: Account | None = None) -> SendSummary:
    summary = SendSummary()
    pending = SentReport.objects.filter(sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
    if account is not None:
        pending = pending.filter(account=account)
    for sent_id, subject in pending.values_list("pk", "subject"):
        result = deliver(sent_id, now=now)
        if result is True:
            summary.sent.append(f"{subject} (retry)")
        elif result is False:
            summary.failed.append(subject)
    return summary


def _still_allowed(subscription: ReportSubscription) -> bool:
    """A subscriber who left the account (or lost their address) gets no more of its reports."""
    user = subscription.user
    return bool(
        user.is_active and user.email and Membership.objects.filter(user=user, account=subscription.account).exists()
    )


def send_due_reports(
    *, now: datetime, account: Account | None = None, frequency: str | None = None, ignore_hour: bool = False
) -> SendSummary:
    """Retry the unsent reports, then claim and send every due subscription's period."""
    summary = retry_unsent(now=now, account=account)
    subscriptions = ReportSubscription.objects.filter(active=True).select_related("account", "user")
    if account is not None:
        subscriptions = subscriptions.filter(account=account)
    if frequency:
        subscriptions = subscriptions.filter(frequency=frequency)
    for subscription in subscriptions.order_by("pk"):
        period = due_period(subscription, now=now, ignore_hour=ignore_hour)
        if period is None:
            continue
        label = f"{subscription.get_frequency_display()} {subscription.account.slug} to {subscription.user.email}"
        if not _still_allowed(subscription):
            ReportSubscription.objects.filter(pk=subscription.pk).update(active=False)
            summary.skipped.append(f"{label}: no longer a member (subscription turned off)")
            continue
        report = build_for_subscription(subscription, *period)
        sent = claim_period(subscription, report)
        if sent is None:
            summary.skipped.append(f"{label}: {period[0]} claimed already")
            continue
        result = deliver(sent.pk, now=now)
        (summary.sent if result else summary.failed if result is False else summary.skipped).append(
            f"{label}: {sent.subject}"
        )
    return summary


def send_report_now(*, account: Account, frequency: str, to: str, now: datetime) -> tuple[SentReport, bool]:
    """The account's report of the last full period, sent to `to` at once (for trying the
    mail settings); kept like any sent report, without a subscription."""
    first, last = last_full_period(frequency, now=now, zone=account.zone)
    report = build_report(ReportScope(account), report_period(first, last, account.zone, frequency))
    mail = render_report_email(report, frequency=frequency)
    sent = SentReport.objects.create(
        account=account, subscription=None, frequency=frequency, period_start=first, period_end=last,
        recipients=[to], subject=mail.subject, html=mail.html, text=mail.text,
        csv_name=mail.attachments[0][0], csv=mail.attachments[0][1].decode(),
    )  # fmt: skip
    return sent, bool(deliver(sent.pk, now=now))


FREQUENCIES = [choice.value for choice in Frequency]
