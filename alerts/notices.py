"""What a notification says: one Notice (from an event, or made up for a test), rendered as
the webhook's JSON body and as an email (subject, text, HTML from templates/alerts/email/)."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from alerts.display import format_value, scope_label
from alerts.links import absolute, event_logs_path
from alerts.models import AlertEvent, AlertRule, EventState
from console.models import Account


@dataclass(frozen=True)
class Notice:
    account: Account
    rule_id: int | None
    rule_name: str
    kind: str
    kind_label: str
    state: str  # EventState: fired / recovered
    value: Decimal | None
    threshold: Decimal | None
    model: str
    api_key: str
    window_start: datetime
    window_end: datetime
    message: str
    event_id: int | None = None
    test: bool = False

    @classmethod
    def of_event(cls, event: AlertEvent) -> "Notice":
        rule = event.rule
        return cls(
            account=event.account,
            rule_id=event.rule_id,
            rule_name=str(rule) if rule else event.get_kind_display(),
            kind=event.kind,
            kind_label=event.get_kind_display(),
            state=event.state,
            value=event.value,
            threshold=event.threshold,
            model=event.model,
            api_key=event.api_key,
            window_start=event.window_start,
            window_end=event.window_end,
            message=event.message,
            event_id=event.pk,
        )

    @classmethod
    def test_of(cls, rule: AlertRule) -> "Notice":
        """A test notification: the rule's last figures (or none), marked as a test."""
        end = timezone.now().replace(microsecond=0)
        return cls(
            account=rule.account,
            rule_id=rule.pk,
            rule_name=str(rule),
            kind=rule.kind,
            kind_label=rule.get_kind_display(),
            state=EventState.FIRED,
            value=rule.last_value,
            threshold=rule.last_threshold,
            model=rule.model,
            api_key=rule.api_key,
            window_start=end - timedelta(hours=1),
            window_end=end,
            message="This is a test notification: nothing fired.",
            test=True,
        )

    @property
    def value_text(self) -> str:
        return format_value(self.kind, self.value)

    @property
    def threshold_text(self) -> str:
        return format_value(self.kind, self.threshold)

    @property
    def scope_text(self) -> str:
        return scope_label(model=self.model, api_key=self.api_key)

    @property
    def headline(self) -> str:
        verb = "firing" if self.state == EventState.FIRED else "recovered"
        test = "[test] " if self.test else ""
        return f"{test}{self.rule_name} is {verb} ({self.account.name})"

    @property
    def alerts_url(self) -> str:
        return absolute(reverse("alerts:list"))

    @property
    def logs_url(self) -> str:
        return absolute(event_logs_path(self))

    def window_text(self) -> str:
        zone = self.account.zone
        start, end = self.window_start.astimezone(zone), self.window_end.astimezone(zone)
        return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({self.account.timezone})"

    def text(self) -> str:
        """One paragraph for chat (Slack's `text`): headline, figures, link."""
        figures = f"{self.kind_label}: {self.value_text} against {self.threshold_text}; {self.scope_text}."
        # Chat apps link absolute URLs only: without METERLOG_BASE_URL there is no link.
        link = f"<{self.logs_url}|Show the requests>" if self.logs_url.startswith(("http://", "https://")) else ""
        return "\n".join(part for part in (self.headline, figures, self.message, link) if part)


def webhook_body(notice: Notice) -> bytes:
    """The JSON a webhook receives. `text` is what Slack-compatible receivers show; the
    other fields are for programs. Times are UTC; numbers are strings (exact decimals)."""

    def number(value):
        # The stored 12 decimal places without the trailing zeros ("12.5", "10").
        return None if value is None else format(Decimal(value).normalize(), "f")

    body = {
        "text": notice.text(),
        "account": notice.account.slug,
        "account_name": notice.account.name,
        "rule": notice.rule_name,
        "rule_id": notice.rule_id,
        "kind": notice.kind,
        "state": notice.state,
        "value": number(notice.value),
        "threshold": number(notice.threshold),
        "scope": {"model": notice.model or None, "api_key": notice.api_key or None},
        "window": {
            "start": notice.window_start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "end": notice.window_end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        },
        "message": notice.message,
        "url": notice.alerts_url,
        "logs_url": notice.logs_url,
        "event_id": notice.event_id,
        "test": notice.test,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def email_parts(notice: Notice) -> tuple[str, str, str]:
    """Subject, text and HTML of the alert mail."""
    context = {"notice": notice}
    subject = render_to_string("alerts/email/alert_subject.txt", context).strip().replace("\n", " ")
    return (
        subject,
        render_to_string("alerts/email/alert_body.txt", context),
        render_to_string("alerts/email/alert_body.html", context),
    )
