"""Report mails: received by a real SMTP server with the sums of the rows, the CSV of the
daily breakdown, once per subscription and period, retried without a second row."""

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy

import pytest
from django.test import override_settings

from alerts.models import AlertEvent, EventState, ReportSubscription, RuleKind, SentReport
from alerts.reports import sending
from console.email_url import parse_email_url
from logs.templatetags.meterlog_format import format_usd
from tests.alerts.reports.conftest import BERLIN, expected
from tests.console.test_mail import free_port

pytestmark = pytest.mark.django_db

# Dec 1 2026, 08:05 in Berlin: November's monthly report (hour 8) is due.
DUE = datetime(2026, 12, 1, 8, 5, tzinfo=BERLIN)


def subscribe(account, user, frequency="monthly", **fields):
    return ReportSubscription.objects.create(account=account, user=user, frequency=frequency, hour=8, **fields)


def parsed(envelope):
    return message_from_bytes(envelope.original_content, policy=policy.default)


def test_monthly_report_arrives_with_the_sums_of_the_rows_and_a_csv(report_data, alice, smtp_server, capsys):
    acme = report_data
    AlertEvent.objects.create(
        account=acme, kind=RuleKind.ERROR_RATE, state=EventState.FIRED, message="error rate 25% > 10%",
        window_start=datetime(2026, 11, 12, tzinfo=UTC), window_end=datetime(2026, 11, 12, 1, tzinfo=UTC),
        created_at=datetime(2026, 11, 12, 1, 2, tzinfo=UTC),
    )  # fmt: skip
    AlertEvent.objects.create(  # October: not in November's report
        account=acme, kind=RuleKind.BUDGET, state=EventState.FIRED, message="october budget",
        window_start=datetime(2026, 10, 12, tzinfo=UTC), window_end=datetime(2026, 10, 13, tzinfo=UTC),
        created_at=datetime(2026, 10, 13, tzinfo=UTC),
    )  # fmt: skip
    subscribe(acme, alice)
    summary = sending.send_due_reports(now=DUE)
    assert (len(summary.sent), summary.failed) == (1, [])

    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == ["alice@acme.test"]
    message = parsed(envelope)
    assert message["Subject"].strip() == "Monthly usage report · Acme Corp · 2026-11-01 – 2026-11-30"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    print(text)  # read it: pytest -s

    nov = expected(acme, date(2026, 11, 1), date(2026, 11, 30))
    oct_ = expected(acme, date(2026, 10, 1), date(2026, 10, 31))
    assert nov["requests"] == 300 and oct_["requests"] == 100
    cost_change = (nov["cost"] - oct_["cost"]) / oct_["cost"] * 100
    assert f"Requests: {nov['requests']:,} (+200.0% vs previous period (100))" in text
    assert f"Tokens: {nov['tokens']:,}" in text
    assert f"Cost: {format_usd(nov['cost'])}" in text
    assert f"{float(cost_change):+.1f}% vs previous period" in text
    rate, before = nov["errors"] / nov["requests"], oct_["errors"] / oct_["requests"]
    assert f"Error rate: {rate * 100:.1f}% ({(rate - before) * 100:+.1f} points" in text
    assert "error rate 25% > 10%" in text and "october budget" not in text
    assert "ALERTS FIRED (1)" in text
    assert "rate_limited" in text and "timeout" in text and "team-a" in text and "claude-3" in text
    assert (
        "Open in the console: https://meterlog.example.test/reports/open/?account=acme&next=%2Fanalytics%2F%3Ftab%3Dcost"
        "%26range%3Dcustom%26start%3D2026-11-01%26end%3D2026-11-30%26zone%3Daccount\r\n"
    ) in text
    assert "https://meterlog.example.test/reports/generate/?account=acme&start=2026-11-01&end=2026-11-30" in text
    for part in (text, html):
        assert "globex" not in part

    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "meterlog-acme-daily-20261101-20261130.csv"
    rows = list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode())))
    assert [row["day"] for row in rows] == [(date(2026, 11, 1) + timedelta(days=i)).isoformat() for i in range(30)]
    assert {date.fromisoformat(row["day"]): int(row["requests"]) for row in rows if int(row["requests"])} == nov["days"]
    assert sum(int(row["requests"]) for row in rows) == nov["requests"]
    assert sum(int(row["errors"]) for row in rows) == nov["errors"]
    assert sum(int(row["total_tokens"]) for row in rows) == nov["tokens"]
    assert sum(Decimal(row["cost"]) for row in rows) == nov["cost"]

    sent = SentReport.objects.get()
    assert (sent.period_start, sent.period_end, sent.recipients) == (date(2026, 11, 1), date(2026, 11, 30),
                                                                     ["alice@acme.test"])  # fmt: skip
    assert sent.sent_at is not None and sent.attempts == 1
    assert sent.html.strip() == html.strip().replace("\r\n", "\n")


def test_a_filtered_report_counts_only_its_model_and_key(report_data, alice, smtp_server):
    acme = report_data
    subscribe(acme, alice, frequency="weekly", model="gpt-4o", api_key="team-a")
    # Monday Nov 30 2026, 09:00 Berlin: the week of Nov 23 - 29.
    sending.send_due_reports(now=datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN))
    [envelope] = smtp_server.envelopes
    message = parsed(envelope)
    assert message["Subject"].strip() == (
        "Weekly usage report · Acme Corp · 2026-11-23 – 2026-11-29 · model gpt-4o, API key team-a"
    )
    week = expected(acme, date(2026, 11, 23), date(2026, 11, 29), model="gpt-4o", api_key="team-a")
    text = message.get_body(("plain",)).get_content()
    assert f"Requests: {week['requests']:,} " in text
    assert "claude-3" not in text and "team-b" not in text
    [attachment] = list(message.iter_attachments())
    rows = list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode())))
    assert len(rows) == 7 and sum(int(row["requests"]) for row in rows) == week["requests"]


def test_due_from_its_hour_and_sent_once_per_period(report_data, alice, smtp_server):
    subscription = subscribe(report_data, alice, frequency="daily")
    assert sending.send_due_reports(now=datetime(2026, 11, 20, 7, 59, tzinfo=BERLIN)).sent == []
    assert len(sending.send_due_reports(now=datetime(2026, 11, 20, 8, 0, tzinfo=BERLIN)).sent) == 1
    # A second beat tick, a later one the same day, a retry: nothing more.
    for minutes in (0, 15, 600):
        moment = datetime(2026, 11, 20, 8, 0, tzinfo=BERLIN) + timedelta(minutes=minutes)
        assert sending.send_due_reports(now=moment).sent == []
    assert len(sending.send_due_reports(now=datetime(2026, 11, 21, 8, 30, tzinfo=BERLIN)).sent) == 1
    assert len(smtp_server.envelopes) == 2
    assert list(SentReport.objects.order_by("period_start").values_list("period_start", flat=True)) == [
        date(2026, 11, 19), date(2026, 11, 20)
    ]  # fmt: skip
    subscription.refresh_from_db()
    assert subscription.last_period_start == date(2026, 11, 20)
    day = expected(report_data, date(2026, 11, 19), date(2026, 11, 19))
    first = parsed(smtp_server.envelopes[0]).get_body(("plain",)).get_content()
    assert f"Requests: {day['requests']:,} " in first


def test_a_failed_send_is_retried_as_the_same_row(report_data, alice, smtp_server):
    subscribe(report_data, alice)
    closed = free_port()
    with override_settings(**parse_email_url(f"smtp://127.0.0.1:{closed}"), EMAIL_TIMEOUT=2):
        summary = sending.send_due_reports(now=DUE)
    assert (summary.sent, len(summary.failed)) == ([], 1)
    sent = SentReport.objects.get()
    assert sent.sent_at is None and sent.attempts == 1 and "refused" in sent.last_error.lower()
    # The next tick, the server reachable again: the same row is sent, no second one.
    summary = sending.send_due_reports(now=DUE + timedelta(minutes=15))
    assert len(summary.sent) == 1 and summary.failed == []
    assert SentReport.objects.count() == 1
    sent.refresh_from_db()
    assert sent.sent_at is not None and sent.attempts == 2 and sent.last_error == ""
    assert sending.send_due_reports(now=DUE + timedelta(minutes=30)).sent == []
    [envelope] = smtp_server.envelopes
    assert parsed(envelope)["Subject"].strip() == sent.subject
    [attachment] = list(parsed(envelope).iter_attachments())
    assert attachment.get_payload(decode=True).decode() == sent.csv


def test_a_send_in_progress_is_not_taken_over_until_its_lease_ends(report_data, alice, smtp_server):
    subscription = subscribe(report_data, alice)
    report = sending.build_for_subscription(subscription, date(2026, 11, 1), date(2026, 11, 30))
    sent = sending.claim_period(subscription, report)
    assert sending.claim_period(subscription, report) is None  # claimed already
    SentReport.objects.filter(pk=sent.pk).update(sending_since=DUE, attempts=1)  # a worker is sending it
    assert sending.deliver(sent.pk, now=DUE + timedelta(minutes=5)) is None
    assert smtp_server.envelopes == []
    assert sending.deliver(sent.pk, now=DUE + sending.SENDING_LEASE + timedelta(seconds=1)) is True
    assert sending.deliver(sent.pk, now=DUE + timedelta(hours=2)) is None  # sent: never again
    assert len(smtp_server.envelopes) == 1


def test_a_member_who_left_gets_no_more_reports(report_data, alice, smtp_server):
    subscription = subscribe(report_data, alice)
    alice.memberships.all().delete()
    summary = sending.send_due_reports(now=DUE)
    assert summary.sent == [] and "no longer a member" in summary.skipped[0]
    subscription.refresh_from_db()
    assert subscription.active is False and smtp_server.envelopes == []


def test_one_accounts_report_never_holds_anothers_data(report_data, alice, bob, smtp_server):
    subscribe(report_data, alice)
    subscribe(bob.memberships.get().account, bob)
    sending.send_due_reports(now=DUE + timedelta(hours=2))  # 08:05 UTC: globex's hour too
    by_rcpt = {envelope.rcpt_tos[0]: parsed(envelope) for envelope in smtp_server.envelopes}
    acme_text = by_rcpt["alice@acme.test"].get_body(("plain",)).get_content()
    globex_text = by_rcpt["bob@globex.test"].get_body(("plain",)).get_content()
    assert "globex-secret-model" in globex_text and "globex-secret-key" in globex_text
    assert "globex-secret" not in acme_text
    for name in ("gpt-4o", "claude-3", "team-a"):
        assert name not in globex_text
    globex = bob.memberships.get().account
    month = expected(globex, date(2026, 11, 1), date(2026, 11, 30), zone=globex.zone)
    assert f"Requests: {month['requests']:,} " in globex_text


def test_unsubscribe_link_of_the_mail_works_logged_out(report_data, alice, smtp_server, client):
    subscription = subscribe(report_data, alice)
    sending.send_due_reports(now=DUE)
    text = parsed(smtp_server.envelopes[0]).get_body(("plain",)).get_content()
    url = re.search(r"Unsubscribe: https://meterlog\.example\.test(\S+)", text).group(1)
    page = client.get(url)
    assert page.status_code == 200 and "Unsubscribe?" in page.content.decode()
    ReportSubscription.objects.filter(pk=subscription.pk).update(active=True)
    assert ReportSubscription.objects.get(pk=subscription.pk).active  # a GET changes nothing
    response = client.post(url)
    assert response.status_code == 200 and "Unsubscribed" in response.content.decode()
    assert ReportSubscription.objects.get(pk=subscription.pk).active is False
    assert sending.send_due_reports(now=datetime(2027, 1, 1, 9, tzinfo=BERLIN)).sent == []
    assert len(smtp_server.envelopes) == 1


@pytest.mark.parametrize("token", ["not-a-token", "eyJzIjoxfQ:1vX2Zz:forged-signature", "x" * 300])
def test_a_bad_unsubscribe_token_is_a_404(client, report_data, alice, token):
    subscription = subscribe(report_data, alice)
    assert client.get(f"/reports/unsubscribe/{token}/").status_code == 404
    assert client.post(f"/reports/unsubscribe/{token}/").status_code == 404
    assert ReportSubscription.objects.get(pk=subscription.pk).active


def test_a_token_for_a_removed_subscription_is_a_404(client, report_data, alice):
    from alerts.reports.email import unsubscribe_token

    subscription = subscribe(report_data, alice)
    token = unsubscribe_token(subscription)
    subscription.delete()
    assert client.get(f"/reports/unsubscribe/{token}/").status_code == 404


def test_a_new_subscription_starts_with_the_next_period():
    from alerts.models import ReportSubscription as Sub
    from console.models import Account

    sub = Sub(account=Account(slug="x", timezone="Europe/Berlin"), frequency="weekly", hour=8)
    # Wednesday: last week's send time (Monday 08:00) has passed; its report is not sent now.
    assert sending.first_period_to_skip(sub, now=datetime(2026, 11, 25, 12, tzinfo=BERLIN)) == date(2026, 11, 16)
    # Monday 07:00: last week's report is still to come at 08:00.
    assert sending.first_period_to_skip(sub, now=datetime(2026, 11, 23, 7, tzinfo=BERLIN)) is None


def test_gateway_strings_are_escaped_in_the_html_part(report_data, alice, smtp_server):
    from tests.alerts.reports.conftest import ingest, records

    rows = records("xss", start=datetime(2026, 11, 10, 9, tzinfo=UTC), n=3, step=timedelta(hours=1),
                   models=["<script>alert(1)</script>"], keys=['"><img src=x onerror=alert(2)>'])  # fmt: skip
    ingest(report_data, rows)
    subscribe(report_data, alice)
    sending.send_due_reports(now=DUE)
    message = parsed(smtp_server.envelopes[0])
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" in message.get_body(("plain",)).get_content()  # text is text
