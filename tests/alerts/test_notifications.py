"""Notifications against real receivers: webhooks to an http.server in a thread (signature,
retries with backoff, give-up), mail to an aiosmtpd server started here."""

import hashlib
import hmac
import json
import time
from email import message_from_bytes, policy

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from alerts import webhooks
from alerts.delivery_tasks import send_delivery
from alerts.models import Channel, Delivery, DeliveryStatus
from alerts.notifications import email_recipients, notify, send_test
from console.models import Membership
from console.sealed import SealedError, seal, unseal
from tests.alerts.conftest import SECRET, make_event, make_rule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("page_settings")]


def _queued(django_capture_on_commit_callbacks, events) -> list[Delivery]:
    with django_capture_on_commit_callbacks() as callbacks:
        rows = notify(events)
    assert len(callbacks) == 1  # one callback queues every delivery, after the commit
    return rows


# --- webhooks ---------------------------------------------------------------------------------


def test_a_fired_event_posts_signed_json_that_a_receiver_can_verify(
    acme, alice, receiver, settings, django_capture_on_commit_callbacks
):
    settings.METERLOG_BASE_URL = "https://meterlog.example.test"
    server = receiver()
    rule = make_rule(acme, webhook_url=server.url, email_enabled=False, model="gpt-4o", api_key="team-a")
    event = make_event(rule)
    [delivery] = _queued(django_capture_on_commit_callbacks, [event])
    assert server.requests == []  # notify only queues: evaluation never waits on a receiver
    assert (delivery.channel, delivery.target, delivery.status) == (Channel.WEBHOOK, server.url, "pending")

    assert send_delivery.apply(args=[delivery.pk]).get() == "sent"
    [request] = server.requests
    header = request["headers"][webhooks.SIGNATURE_HEADER]
    timestamp, digest = (part.split("=", 1)[1] for part in header.split(","))
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request["body"], hashlib.sha256).hexdigest()
    assert digest == expected
    assert abs(int(timestamp) - time.time()) < 10
    assert webhooks.verify(SECRET, request["body"], header)
    assert not webhooks.verify("whsec_other", request["body"], header)
    assert not webhooks.verify(SECRET, request["body"] + b" ", header)
    assert not webhooks.verify(SECRET, request["body"], header, now=int(timestamp) + 301)  # a replay, later
    assert request["headers"]["Content-Type"] == "application/json"

    body = json.loads(request["body"])
    assert body["account"] == "acme" and body["rule"] == "Daily budget" and body["rule_id"] == rule.pk
    assert (body["kind"], body["state"], body["value"], body["threshold"]) == ("budget", "fired", "12.5", "10")
    assert body["scope"] == {"model": "gpt-4o", "api_key": "team-a"}
    assert body["window"] == {"start": "2026-12-05T00:00:00Z", "end": "2026-12-05T12:00:00Z"}
    assert body["url"] == "https://meterlog.example.test/alerts/"
    assert body["logs_url"].startswith("https://meterlog.example.test/logs/?start=2026-12-05T00%3A00%3A00%2B00%3A00")
    assert "model=gpt-4o" in body["logs_url"] and "api_key=team-a" in body["logs_url"]
    assert body["text"].startswith("Daily budget is firing (Acme Corp)\nBudget: $12.50 against $10.00")
    assert body["text"].endswith(f"\n<{body['logs_url']}|Show the requests>")  # Slack's link form
    assert body["test"] is False
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 1, "")
    assert delivery.sent_at is not None


def test_a_failing_receiver_is_retried_until_it_answers(acme, receiver, django_capture_on_commit_callbacks):
    server = receiver([500, 503, 200])
    rule = make_rule(acme, webhook_url=server.url, email_enabled=False)
    [delivery] = _queued(django_capture_on_commit_callbacks, [make_event(rule)])
    assert send_delivery.apply(args=[delivery.pk]).get() == "sent"  # eager: the retries run inline
    assert len(server.requests) == 3
    assert len({r["body"] for r in server.requests}) == 1  # the same body each time, signed afresh
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert delivery.last_error.startswith("HTTP 503")  # the last failure stays for the record


def test_retries_stop_after_the_configured_tries(acme, receiver, settings, django_capture_on_commit_callbacks):
    server = receiver([502])
    rule = make_rule(acme, webhook_url=server.url, email_enabled=False)
    [delivery] = _queued(django_capture_on_commit_callbacks, [make_event(rule)])
    send_delivery.apply(args=[delivery.pk])
    assert send_delivery.max_retries == settings.METERLOG_ALERT_DELIVERY_TRIES - 1
    assert len(server.requests) == settings.METERLOG_ALERT_DELIVERY_TRIES == 5
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 5)
    assert delivery.last_error == "HTTP 502 'try later'"
    # Backoff: exponential from METERLOG_ALERT_RETRY_BACKOFF_SECONDS with full jitter, capped.
    assert (send_delivery.retry_backoff, send_delivery.retry_jitter) == (30, True)
    assert send_delivery.retry_backoff_max == 3600


def test_a_client_error_is_not_retried(acme, receiver, django_capture_on_commit_callbacks):
    server = receiver([404])
    rule = make_rule(acme, webhook_url=server.url, email_enabled=False)
    [delivery] = _queued(django_capture_on_commit_callbacks, [make_event(rule)])
    send_delivery.apply(args=[delivery.pk])
    assert len(server.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1)


def test_a_closed_port_fails_with_a_reason(acme, django_capture_on_commit_callbacks):
    from tests.console.test_mail import free_port

    rule = make_rule(acme, webhook_url=f"http://127.0.0.1:{free_port()}/", email_enabled=False)
    [delivery] = _queued(django_capture_on_commit_callbacks, [make_event(rule)])
    send_delivery.apply(args=[delivery.pk])
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 5)
    assert delivery.last_error.startswith("ConnectError")


def test_a_sent_delivery_is_not_sent_again(acme, receiver, django_capture_on_commit_callbacks):
    server = receiver()
    rule = make_rule(acme, webhook_url=server.url, email_enabled=False)
    [delivery] = _queued(django_capture_on_commit_callbacks, [make_event(rule)])
    send_delivery.apply(args=[delivery.pk])
    send_delivery.apply(args=[delivery.pk])  # a message delivered twice to the workers
    assert len(server.requests) == 1


def test_events_inside_the_cooldown_and_rules_without_channels_send_nothing(acme, django_capture_on_commit_callbacks):
    quiet = make_event(make_rule(acme, email_enabled=True), notified=False)
    mute = make_event(make_rule(acme, email_enabled=False))
    with django_capture_on_commit_callbacks() as callbacks:
        assert notify([quiet, mute]) == []
    assert callbacks == [] and Delivery.objects.count() == 0


def test_private_addresses_are_refused_unless_allowed(settings):
    settings.METERLOG_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:8000/", "http://10.1.2.3/x", "http://[::1]/", "http://169.254.169.254/latest"):
        with pytest.raises(webhooks.WebhookURLError, match="private or local"):
            webhooks.check_url(url)
    assert webhooks.check_url("https://93.184.216.34/hook") == "https://93.184.216.34/hook"
    for url, message in [
        ("ftp://example.test/", "http:// or https://"),
        ("https://user:pw@example.test/", "no user name"),
        ("https:///nohost", "host name"),
        ("https://example.test:99999/", "invalid port"),
    ]:
        with pytest.raises(webhooks.WebhookURLError, match=message):
            webhooks.check_url(url)
    settings.METERLOG_WEBHOOK_ALLOW_PRIVATE = True
    assert webhooks.check_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/"


def test_a_private_address_is_checked_again_when_sending(acme, receiver, settings, django_capture_on_commit_callbacks):
    server = receiver()
    rule = make_rule(acme, webhook_url=server.url, email_enabled=False)
    [delivery] = _queued(django_capture_on_commit_callbacks, [make_event(rule)])
    settings.METERLOG_WEBHOOK_ALLOW_PRIVATE = False
    send_delivery.apply(args=[delivery.pk])
    assert server.requests == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1) and "private or local" in delivery.last_error


# --- sealed secrets ---------------------------------------------------------------------------------


def test_sealed_secrets_open_with_the_key_or_a_fallback(settings):
    sealed = seal("whsec_abc")
    assert sealed != "whsec_abc" and "abc" not in sealed
    assert unseal(sealed) == "whsec_abc"
    old = settings.SECRET_KEY
    with override_settings(SECRET_KEY="a-new-key-" + "x" * 40, SECRET_KEY_FALLBACKS=[old]):
        assert unseal(sealed) == "whsec_abc"
        assert unseal(seal("again")) == "again"
    with override_settings(SECRET_KEY="a-new-key-" + "x" * 40, SECRET_KEY_FALLBACKS=[]), pytest.raises(SealedError):
        unseal(sealed)


# --- email ------------------------------------------------------------------------------------------


def test_an_alert_mail_reaches_the_owners_and_admins(
    acme,
    alice,
    adam,
    charlie,
    smtp_server,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.METERLOG_BASE_URL = "https://meterlog.example.test"
    rule = make_rule(acme, name="Spend today")
    assert email_recipients(rule) == ["adam@acme.test", "alice@acme.test"]  # not the viewer
    [delivery] = _queued(django_capture_on_commit_callbacks, [make_event(rule)])
    assert (delivery.channel, delivery.target) == (Channel.EMAIL, "adam@acme.test, alice@acme.test")
    assert send_delivery.apply(args=[delivery.pk]).get() == "sent"

    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == ["adam@acme.test", "alice@acme.test"]
    message = message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["Subject"] == "[Meterlog] Firing: Spend today · Acme Corp"
    text = message.get_body(("plain",)).get_content()
    assert "Value:     $12.50" in text and "Threshold: $10.00" in text
    assert "Scope:     all requests" in text
    assert "Window:    2026-12-05 00:00 – 2026-12-05 12:00 (UTC)" in text
    assert "https://meterlog.example.test/logs/?start=2026-12-05T00%3A00%3A00%2B00%3A00" in text
    html = message.get_body(("html",)).get_content()
    assert "<h2" in html and "Spend today is firing (Acme Corp)" in html
    assert 'href="https://meterlog.example.test/alerts/"' in html
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_chosen_members_and_addresses_are_the_recipients(acme, alice, adam, charlie, globex, bob):
    rule = make_rule(acme, email_addresses=["oncall@example.test"])
    assert email_recipients(rule) == ["oncall@example.test"]
    rule.email_users.set([charlie, bob])  # bob is not a member of acme
    assert email_recipients(rule) == ["charlie@acme.test", "oncall@example.test"]
    Membership.objects.filter(user=charlie).delete()  # a member who left gets no more mail
    assert email_recipients(rule) == ["oncall@example.test"]


def test_a_long_list_of_recipients_is_split_into_messages(acme):
    addresses = [f"person-{n:02d}-with-a-long-name@example.test" for n in range(20)]
    rule = make_rule(acme, email_addresses=addresses)
    rows = notify([make_event(rule)])
    assert all(len(row.target) <= 500 for row in rows) and len(rows) == 2
    assert sum(row.target.count("@") for row in rows) == 20


def test_a_refused_recipient_fails_the_delivery_without_retries(
    acme,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    rule = make_rule(acme, email_addresses=["nobody@refused.test"])
    [delivery] = _queued(django_capture_on_commit_callbacks, [make_event(rule)])
    send_delivery.apply(args=[delivery.pk])
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "nobody@refused.test" in delivery.last_error
    assert smtp_server.envelopes == []


def test_a_test_notification_is_sent_at_once_and_marked(acme, alice, smtp_server, receiver):
    server = receiver()
    rule = make_rule(acme, webhook_url=server.url)
    [mail] = send_test(rule, Channel.EMAIL)
    [hook] = send_test(rule, Channel.WEBHOOK)
    assert (mail.status, mail.is_test, hook.status, hook.is_test) == ("sent", True, "sent", True)
    message = message_from_bytes(smtp_server.envelopes[0].original_content, policy=policy.default)
    assert message["Subject"].strip() == "[Meterlog test] Firing: Daily budget · Acme Corp"
    assert server.json()["test"] is True and server.json()["text"].startswith("[test] Daily budget")
    assert Delivery.objects.get(pk=hook.pk).status == DeliveryStatus.SENT


def test_an_owner_without_an_email_address_is_not_a_recipient(acme):
    user = get_user_model().objects.create_user(username="no-mail", email="")
    Membership.objects.create(user=user, account=acme, role="owner")
    assert email_recipients(make_rule(acme)) == []


def test_without_a_base_url_the_chat_text_has_no_link(acme, receiver, settings):
    settings.METERLOG_BASE_URL = ""
    server = receiver()
    rule = make_rule(acme, webhook_url=server.url, email_enabled=False)
    [delivery] = notify([make_event(rule)])
    send_delivery.apply(args=[delivery.pk])
    body = server.json()
    assert body["text"] == (
        "Daily budget is firing (Acme Corp)\nBudget: $12.50 against $10.00; all requests.\n$12.50 spent today of $10.00"
    )
    assert body["url"] == "/alerts/" and body["logs_url"].startswith("/logs/?start=")
