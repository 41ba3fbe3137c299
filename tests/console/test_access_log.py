"""The privacy switch (owners only) and the access log (console.AuditEvent): one event per
audited action with its user and details, append-only, readable by the account's owners only.
acme: alice (owner), charlie (viewer), adam (admin); globex: bob (owner)."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction

from console import services
from console.audit import ACCESS_LOG_PAGE, Actor, record_event
from console.models import Account, ApiToken, AuditEvent, Membership
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def adam(acme):
    return make_user("adam@acme.test", account=acme, role="admin")


def _events(account):
    return list(AuditEvent.objects.filter(account=account).order_by("id").values_list("username", "action", "details"))


def test_owner_switches_privacy_and_each_real_switch_is_one_event(client, alice, acme):
    client.force_login(alice)
    assert client.post("/settings/privacy/", {"privacy_mode": "on"}, REMOTE_ADDR="198.51.100.7").status_code == 302
    acme.refresh_from_db()
    assert acme.privacy_mode is True
    client.post("/settings/privacy/", {"privacy_mode": "on"})  # already on: no change, no event
    client.post("/settings/privacy/", {"privacy_mode": "off"})
    acme.refresh_from_db()
    assert acme.privacy_mode is False
    assert _events(acme) == [("alice@acme.test", "privacy_on", {}), ("alice@acme.test", "privacy_off", {})]
    first = AuditEvent.objects.filter(account=acme).order_by("id").first()
    assert (first.user, first.ip_address) == (alice, "198.51.100.7")


@pytest.mark.parametrize("who", ["charlie", "adam"])
def test_viewer_and_admin_cannot_switch_privacy_or_read_the_access_log(client, acme, alice, charlie, adam, who):
    client.force_login({"charlie": charlie, "adam": adam}[who])
    assert client.post("/settings/privacy/", {"privacy_mode": "on"}).status_code == 403
    assert client.get("/settings/access-log/").status_code == 403
    page = client.get("/logs/")
    assert b"/settings/privacy/" not in page.content and b"/settings/access-log/" not in page.content
    acme.refresh_from_db()
    assert acme.privacy_mode is False
    assert AuditEvent.objects.count() == 0


def test_settings_page_lists_what_each_mode_records(client, alice, acme):
    client.force_login(alice)
    html = client.get("/settings/").content.decode()
    assert 'action="/settings/privacy/"' in html and "Turn privacy mode on" in html
    table = html[html.index('id="privacy-fields"') :]
    table = table[: table.index("</table>")]
    for field in ("request_params", "user_agent", "error_details"):
        row = table[table.index(field) :]
        assert "<strong>Not stored</strong>" in row[: row.index("</tr>")], field
    assert "/24" in table and "/48" in table and "Never stored" in table
    assert 'href="/settings/access-log/"' in html


def test_settings_change_logs_old_and_new_values_only_when_something_changed(client, alice, acme):
    client.force_login(alice)
    client.post("/settings/", {"name": "Acme Inc", "timezone": "Europe/Berlin"})
    client.post("/settings/", {"name": "Acme Inc", "timezone": "Europe/Berlin"})  # the same again: no event
    assert _events(acme) == [
        (
            "alice@acme.test",
            "settings_changed",
            {"changes": {"name": ["Acme Corp", "Acme Inc"], "timezone": ["UTC", "Europe/Berlin"]}},
        )
    ]


def test_token_create_and_revoke_are_logged_once(client, alice, acme):
    client.force_login(alice)
    client.post("/settings/tokens/new/", {"name": "prod gateway", "scope": "ingest"})
    token = ApiToken.objects.get()
    client.post(f"/settings/tokens/{token.pk}/revoke/")
    client.post(f"/settings/tokens/{token.pk}/revoke/")  # already revoked: nothing more
    details = {"token_id": token.pk, "hint": token.hint, "name": "prod gateway", "scope": "ingest"}
    assert _events(acme) == [
        ("alice@acme.test", "token_created", details),
        ("alice@acme.test", "token_revoked", details),
    ]


def test_membership_changes_are_logged(client, alice, acme):
    client.force_login(alice)
    client.post(
        "/settings/members/add/", {"email": "dora@acme.test", "password": "a-long-pass-phrase-9", "role": "viewer"}
    )
    dora = Membership.objects.get(user__username="dora@acme.test")
    client.post(f"/settings/members/{dora.pk}/role/", {"role": "admin"})
    client.post(f"/settings/members/{dora.pk}/role/", {"role": "admin"})  # no change: no event
    client.post(f"/settings/members/{dora.pk}/remove/")
    assert _events(acme) == [
        ("alice@acme.test", "member_added", {"member": "dora@acme.test", "role": "viewer", "new_user": True}),
        ("alice@acme.test", "member_role_changed", {"member": "dora@acme.test", "role": ["viewer", "admin"]}),
        ("alice@acme.test", "member_removed", {"member": "dora@acme.test", "role": "admin"}),
    ]


def test_a_refused_change_writes_no_event(client, alice, acme):
    client.force_login(alice)
    owner = Membership.objects.get(user=alice)
    client.post(f"/settings/members/{owner.pk}/role/", {"role": "viewer"})  # the last owner
    assert Membership.objects.get(pk=owner.pk).role == "owner"
    assert AuditEvent.objects.count() == 0


def test_each_owner_reads_only_their_accounts_log(client, acme, globex, alice, bob):
    services.account_set_privacy_mode(account=acme, enabled=True, actor=Actor(user=alice))
    services.account_set_privacy_mode(account=globex, enabled=True, actor=Actor(user=bob))
    record_event(account=globex, action="settings_changed", actor=Actor(user=bob), details={"secret": "GLOBEX-ONLY"})

    client.force_login(alice)
    html = client.get("/settings/access-log/").content.decode()
    assert html.count("<tr>") - 1 == 1  # one event row under the header row
    assert "alice@acme.test" in html and "Privacy mode on" in html
    assert "bob@globex.test" not in html and "GLOBEX-ONLY" not in html

    client.force_login(bob)
    html = client.get("/settings/access-log/").content.decode()
    assert "GLOBEX-ONLY" in html and "alice@acme.test" not in html


def test_access_log_escapes_details_and_pages_newest_first(client, alice, acme):
    record_event(account=acme, action="settings_changed", details={"changes": {"name": ["<b>x</b>", "<script>y"]}})
    for n in range(ACCESS_LOG_PAGE + 2):
        record_event(account=acme, action="settings_changed", actor=Actor(user=alice), details={"n": n})
    client.force_login(alice)
    first = client.get("/settings/access-log/")
    assert [e.details["n"] for e in first.context["events"]] == list(range(ACCESS_LOG_PAGE + 1, 1, -1))
    second = client.get(f"/settings/access-log/?before={first.context['next_before']}")
    events = second.context["events"]
    assert [e.details.get("n") for e in events] == [1, 0, None]
    assert second.context["next_before"] is None
    html = second.content.decode()
    assert "&lt;b&gt;x&lt;/b&gt; → &lt;script&gt;y" in html and "<script>y" not in html


def test_events_cannot_be_changed_or_deleted_through_the_orm(alice, acme):
    event = record_event(account=acme, action="privacy_on", actor=Actor(user=alice))
    event.details = {"forged": True}
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="privacy_off")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    event = AuditEvent.objects.get(pk=event.pk)
    assert (event.action, event.details) == ("privacy_on", {})


def test_deleting_a_user_keeps_their_events(alice, acme):
    record_event(account=acme, action="privacy_on", actor=Actor(user=alice))
    get_user_model().objects.filter(pk=alice.pk).delete()
    event = AuditEvent.objects.get()
    assert (event.user_id, event.username, event.action) == (None, "alice@acme.test", "privacy_on")


def test_admin_shows_events_read_only(client, acme, alice):
    event = record_event(account=acme, action="privacy_on", actor=Actor(user=alice))
    root = get_user_model().objects.create_superuser("root@ops.test", "root@ops.test", "pw-for-tests-1")
    client.force_login(root)
    assert client.get("/admin/console/auditevent/").status_code == 200
    assert client.get(f"/admin/console/auditevent/{event.pk}/change/").status_code == 200
    assert client.post(f"/admin/console/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/console/auditevent/add/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.postgres_only
def test_postgres_trigger_refuses_raw_update_and_delete(alice, acme):
    event = record_event(account=acme, action="privacy_on", actor=Actor(user=alice))
    table = AuditEvent._meta.db_table
    for sql in (f"UPDATE {table} SET action = 'privacy_off' WHERE id = %s", f"DELETE FROM {table} WHERE id = %s"):
        refused = pytest.raises((InternalError, ProgrammingError, IntegrityError))
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    # An account with a trail cannot be deleted (PROTECT), so its trail cannot vanish with it.
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=acme.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "privacy_on"


def test_operator_switch_in_the_admin_is_logged(client, acme):
    root = get_user_model().objects.create_superuser("root@ops.test", "root@ops.test", "pw-for-tests-1")
    client.force_login(root)
    data = {
        "slug": "acme",
        "name": "Acme Corp",
        "tier": "standard",
        "timezone": "UTC",
        "privacy_mode": "on",
        "created_at_0": "2026-11-01",
        "created_at_1": "00:00:00",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    response = client.post(f"/admin/console/account/{acme.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    acme.refresh_from_db()
    assert acme.privacy_mode is True
    assert _events(acme) == [("root@ops.test", "privacy_on", {"via": "admin"})]


def test_a_token_made_on_the_command_line_is_logged_without_a_user(acme):
    call_command("create_token", "acme", "--scope", "read", "--name", "cron", stdout=io.StringIO())
    token = ApiToken.objects.get()
    details = {"token_id": token.pk, "hint": token.hint, "name": "cron", "scope": "read"}
    assert _events(acme) == [("", "token_created", details)]
    assert AuditEvent.objects.get().user is None
