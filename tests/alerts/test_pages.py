"""The alerts pages: who may read and change them, the form's refusals, the secret shown
once, the test buttons, the event history's links to the log list, the access log."""

import re
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from alerts.models import AlertRule, Delivery, RuleKind
from console.models import AuditAction, AuditEvent
from console.sealed import unseal
from tests.alerts.conftest import make_event, make_rule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("page_settings")]

BUDGET = {"kind": "budget", "name": "Spend", "budget_amount": "25", "budget_period": "daily", "cooldown_minutes": "60"}


def _form(**fields) -> dict:
    data = {**BUDGET, "enabled": "on", "email_enabled": "on"}
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def test_a_viewer_reads_the_list_but_changes_nothing(client, acme, charlie):
    rule = make_rule(acme)
    client.force_login(charlie)
    page = client.get("/alerts/").content.decode()
    assert "Daily budget" in page and "/alerts/new/" not in page and f"/alerts/{rule.pk}/" not in page
    assert client.get("/alerts/new/").status_code == 403
    assert client.post("/alerts/new/", _form()).status_code == 403
    assert client.get(f"/alerts/{rule.pk}/").status_code == 403
    assert client.post(f"/alerts/{rule.pk}/", _form(name="Hijacked")).status_code == 403
    assert client.post(f"/alerts/{rule.pk}/delete/").status_code == 403
    assert client.post(f"/alerts/{rule.pk}/test/email/").status_code == 403
    assert list(AlertRule.objects.values_list("name", flat=True)) == ["Daily budget"]
    assert Delivery.objects.count() == 0


def test_another_account_sees_none_of_the_rules_and_events(client, acme, globex, bob):
    rule = make_rule(acme, name="Acme secret rule")
    make_event(rule, message="acme event")
    client.force_login(bob)
    page = client.get("/alerts/").content.decode()
    assert "Acme secret rule" not in page and "acme event" not in page
    for url in (f"/alerts/{rule.pk}/", f"/alerts/{rule.pk}/delete/", f"/alerts/{rule.pk}/test/email/"):
        method = client.get if url.endswith(f"{rule.pk}/") else client.post
        assert method(url).status_code == 404, url
    assert client.post(f"/alerts/{rule.pk}/", _form(name="Hijacked")).status_code == 404
    assert AlertRule.objects.get(pk=rule.pk).name == "Acme secret rule"


def test_an_admin_creates_edits_and_deletes_a_rule_and_each_is_logged(client, acme, adam):
    client.force_login(adam)
    response = client.post("/alerts/new/", _form(model="gpt-4o", email_addresses="ops@example.test, fin@example.test"))
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert response["Location"] == f"/alerts/{rule.pk}/"
    assert (rule.kind, rule.name, rule.model, rule.api_key, rule.created_by) == ("budget", "Spend", "gpt-4o", "", adam)
    assert rule.params == {"amount": 25.0, "period": "daily"}
    assert rule.email_addresses == ["ops@example.test", "fin@example.test"]
    assert rule.webhook_secret_sealed == ""

    # The kind stays: a posted kind is ignored on an existing rule.
    response = client.post(
        f"/alerts/{rule.pk}/",
        _form(kind="error_rate", budget_amount="40", model="", email_addresses="ops@example.test, fin@example.test"),
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.kind, rule.params["amount"], rule.model) == ("budget", 40.0, "")
    client.post(f"/alerts/{rule.pk}/delete/")
    assert not AlertRule.objects.exists()

    events = {e.action: e for e in AuditEvent.objects.filter(account=acme)}
    assert set(events) == {
        AuditAction.ALERT_RULE_CREATED,
        AuditAction.ALERT_RULE_CHANGED,
        AuditAction.ALERT_RULE_DELETED,
    }
    changed = events[AuditAction.ALERT_RULE_CHANGED]
    assert changed.username == "adam@acme.test"
    assert changed.details["changes"] == {
        "model": ["gpt-4o", ""],
        "params": ["amount=25.0, period=daily", "amount=40.0, period=daily"],
    }
    assert "params: amount=25.0, period=daily → amount=40.0, period=daily" in changed.detail_lines()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"budget_amount": ""}, "budget_amount", "Amount is required."),
        ({"budget_amount": "-3"}, "budget_amount", "greater than or equal to 0.01"),
        ({"budget_amount": "lots"}, "budget_amount", "Enter a number."),
        ({"budget_period": "weekly"}, "budget_period", "Select a valid choice."),
        ({"kind": "sms"}, "kind", "Select a valid choice."),
        ({"kind": "error_rate", "error_rate_threshold": "150"}, "error_rate_threshold", "less than or equal to 100"),
        ({"kind": "error_rate", "error_rate_window_minutes": "5"}, "error_rate_window_minutes", "greater than or"),
        ({"kind": "cost_anomaly", "cost_anomaly_k": "0"}, "cost_anomaly_k", "greater than or equal to 0.5"),
        ({"kind": "token_spike", "model": "gpt-4o", "api_key": "team-a"}, "api_key", "not both"),
        ({"kind": "token_spike", "token_spike_mode": "p99", "api_key": "team-a"}, "api_key", "scope it by a model"),
        ({"cooldown_minutes": "-1"}, "cooldown_minutes", "greater than or equal to 0"),
        ({"email_addresses": "ops@example.test\nnot-an-address"}, "email_addresses", "'not-an-address' is not an"),
        ({"webhook_url": "ftp://example.test/hook"}, "webhook_url", "must start with http:// or https://"),
        ({"webhook_url": "https://u:p@example.test/"}, "webhook_url", "no user name or password"),
        ({"name": "x" * 101}, "name", "at most 100 characters"),
        ({"model": "gpt\x00"}, "model", "NUL character"),
    ],
)
def test_the_form_refuses_bad_input_with_a_clear_message(client, acme, adam, fields, field, message):
    client.force_login(adam)
    response = client.post("/alerts/new/", _form(**fields))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message.lower() in " ".join(errors[field]).lower()
    assert message.replace("'", "&#x27;") in response.content.decode() or message in response.content.decode()
    assert not AlertRule.objects.exists()


def test_a_private_webhook_address_is_refused_when_not_allowed(client, acme, adam, settings):
    settings.METERLOG_WEBHOOK_ALLOW_PRIVATE = False
    client.force_login(adam)
    response = client.post("/alerts/new/", _form(webhook_url="http://127.0.0.1:9/hook"))
    assert response.status_code == 400
    assert "private or local address" in response.context["form"].errors["webhook_url"][0]


def _secret(response) -> str:
    match = re.search(r'<code id="raw-secret">(whsec_[\w-]+)</code>', response.content.decode())
    assert match, "no secret on the page"
    return match.group(1)


def test_the_webhook_secret_is_shown_once_and_stored_sealed(client, acme, adam, receiver):
    server = receiver()
    client.force_login(adam)
    response = client.post("/alerts/new/", _form(webhook_url=server.url))
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    secret = _secret(response)
    rule = AlertRule.objects.get()
    assert secret not in rule.webhook_secret_sealed and unseal(rule.webhook_secret_sealed) == secret
    assert secret not in client.get(f"/alerts/{rule.pk}/").content.decode()

    # Saving again keeps it; "regenerate" makes a new one (shown once too).
    assert client.post(f"/alerts/{rule.pk}/", _form(webhook_url=server.url)).status_code == 302
    rule.refresh_from_db()
    assert unseal(rule.webhook_secret_sealed) == secret
    response = client.post(f"/alerts/{rule.pk}/", _form(webhook_url=server.url, regenerate_secret="on"))
    new = _secret(response)
    rule.refresh_from_db()
    assert new != secret and unseal(rule.webhook_secret_sealed) == new

    # The test button signs with it.
    response = client.post(f"/alerts/{rule.pk}/test/webhook/", follow=True)
    assert "Test webhook sent to" in response.content.decode()
    from alerts.webhooks import SIGNATURE_HEADER, verify

    assert verify(new, server.requests[0]["body"], server.requests[0]["headers"][SIGNATURE_HEADER])
    # Removing the URL drops the secret.
    client.post(f"/alerts/{rule.pk}/", _form(webhook_url=""))
    rule.refresh_from_db()
    assert rule.webhook_secret_sealed == ""


def test_the_test_buttons_say_what_happened(client, acme, adam, alice, receiver, mailoutbox):
    server = receiver([500])
    rule = make_rule(acme, webhook_url=server.url)
    client.force_login(adam)
    page = client.post(f"/alerts/{rule.pk}/test/email/", follow=True).content.decode()
    assert "Test email sent to adam@acme.test, alice@acme.test." in page
    assert [m.subject for m in mailoutbox] == ["[Meterlog test] Firing: Daily budget · Acme Corp"]
    page = client.post(f"/alerts/{rule.pk}/test/webhook/", follow=True).content.decode()
    assert "failed: HTTP 500" in page
    assert len(server.requests) == 1  # a test tries once
    assert client.post(f"/alerts/{rule.pk}/test/sms/").status_code == 404
    bare = make_rule(acme, name="No hook")
    response = client.post(f"/alerts/{bare.pk}/test/webhook/")
    assert response.status_code == 400 and "This rule has no webhook URL." in response.content.decode()


def test_the_history_links_each_event_to_its_requests(client, acme, charlie):
    acme.timezone = "Europe/Berlin"
    acme.save()
    rule = make_rule(acme, kind=RuleKind.ERROR_RATE, name="Errors", params={}, model="gpt-4o")
    make_event(
        rule,
        value=Decimal("0.25"),
        threshold=Decimal("0.1"),
        window_start=datetime(2026, 12, 5, 11, 0, tzinfo=UTC),
        window_end=datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
    )
    client.force_login(charlie)
    page = client.get("/alerts/").content.decode()
    assert "25.00 %" in page and "10.00 %" in page
    [href] = re.findall(r'href="(/logs/\?[^"]+)"', page)
    query = parse_qs(urlsplit(href.replace("&amp;", "&")).query)
    assert query == {
        "start": ["2026-12-05T12:00:00+01:00"],
        "end": ["2026-12-05T13:00:00+01:00"],
        "model": ["gpt-4o"],
        "status": ["error"],
    }
    assert client.get(href.replace("&amp;", "&")).status_code == 200  # the log list takes it


def test_events_are_paged_newest_first(client, acme, charlie):
    rule = make_rule(acme)
    events = [make_event(rule, message=f"event {n:02d}") for n in range(30)]
    client.force_login(charlie)
    first = client.get("/alerts/").content.decode()
    assert "event 29" in first and "event 05" in first and "event 04" not in first
    response = client.get(f"/alerts/?before={events[5].pk}")
    second = response.content.decode()
    assert "event 04" in second and "event 00" in second and "event 05" not in second
    assert client.get("/alerts/?before=abc").status_code == 400
    assert "No events before these" in client.get("/alerts/?before=999999").content.decode()


def test_a_preview_shows_the_backtest_without_saving(client, acme, adam):
    client.force_login(adam)
    response = client.post("/alerts/new/", _form(preview="1"))
    assert response.status_code == 200
    assert response.context["preview"] is True and response.context["backtest"].count == 0
    assert 'id="backtest-count">0 times' in response.content.decode()
    assert not AlertRule.objects.exists()


def test_the_list_reads_the_same_number_of_queries_for_more_rules_and_events(client, acme, charlie):
    client.force_login(charlie)

    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get("/alerts/").status_code == 200
        return len(captured)

    rule = make_rule(acme)
    make_event(rule)
    queries()  # the first visit also stores the current account in the session
    few = queries()
    for n in range(5):
        make_event(make_rule(acme, name=f"Rule {n}", kind=RuleKind.ERROR_RATE, params={}))
    assert queries() == few
