"""`manage.py send_reports` against a real SMTP server."""

from datetime import date, datetime
from email import message_from_bytes, policy
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerts.models import ReportSubscription, SentReport
from alerts.reports.periods import last_full_period

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("send_reports", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_now_and_to_send_one_report_of_the_last_full_period(report_data, smtp_server):
    out = run("--now", "--to", "ops@example.test", "--account", "acme", "--period", "monthly")
    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == ["ops@example.test"]
    first, last = last_full_period("monthly", now=timezone.now(), zone=report_data.zone)
    subject = message_from_bytes(envelope.original_content, policy=policy.default)["Subject"].strip()
    assert subject == f"Monthly usage report · Acme Corp · {first} – {last}"
    assert f"Sent: {subject} to ops@example.test" in out
    sent = SentReport.objects.get()
    assert (sent.subscription, sent.recipients, sent.period_start) == (None, ["ops@example.test"], first)
    assert "Unsubscribe" not in sent.text  # no subscription behind it


def test_now_sends_the_due_subscriptions_without_waiting_for_their_hour(report_data, alice, smtp_server):
    ReportSubscription.objects.create(account=report_data, user=alice, frequency="daily", hour=23)
    out = run("--now", "--account", "acme")
    assert "1 sent, 0 failed, 0 skipped." in out
    assert run("--now").endswith("0 sent, 0 failed, 0 skipped.\n")  # once per period
    assert len(smtp_server.envelopes) == 1


def test_the_period_option_picks_the_subscriptions(report_data, alice, smtp_server):
    ReportSubscription.objects.create(account=report_data, user=alice, frequency="daily", hour=0)
    ReportSubscription.objects.create(account=report_data, user=alice, frequency="monthly", hour=0)
    assert "1 sent" in run("--now", "--period", "monthly")
    assert SentReport.objects.get().frequency == "monthly"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "ops@example.test", "--account", "acme"], "--to sends one report at once: give --now too"),
        (["--now", "--to", "ops@example.test"], "--to needs --account SLUG"),
        (["--now", "--to", "nope", "--account", "acme"], "--to: 'nope' is not an email address"),
        (["--account", "nobody"], "--account: no account with slug 'nobody'"),
    ],
)
def test_bad_options(report_data, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_a_failed_send_exits_non_zero_and_is_kept(report_data, alice, settings):
    from console.email_url import parse_email_url
    from tests.console.test_mail import free_port

    for name, value in parse_email_url(f"smtp://127.0.0.1:{free_port()}").items():
        setattr(settings, name, value)
    settings.EMAIL_TIMEOUT = 2
    ReportSubscription.objects.create(account=report_data, user=alice, frequency="weekly", hour=0)
    with pytest.raises(CommandError, match="1 report mail"):
        run("--now")
    assert SentReport.objects.get().sent_at is None


def test_the_beat_task_sends_the_due_reports(report_data, alice, smtp_server, monkeypatch):
    from alerts import report_tasks

    ReportSubscription.objects.create(account=report_data, user=alice, frequency="monthly", hour=8)
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, 1, 9, 0, tzinfo=report_data.zone))
    assert report_tasks.send_due_reports() == {"sent": 1, "failed": 0, "skipped": 0}
    assert report_tasks.send_due_reports() == {"sent": 0, "failed": 0, "skipped": 0}
    assert SentReport.objects.get().period_start == date(2026, 11, 1)


def test_the_beat_schedule_names_the_task():
    from django.conf import settings

    from console.celery import app

    assert settings.CELERY_BEAT_SCHEDULE["send-due-reports"]["task"] == "alerts.report_tasks.send_due_reports"
    app.loader.import_default_modules()
    assert "alerts.report_tasks.send_due_reports" in app.tasks
