"""What operators do in the Django admin is in the accounts' access logs (issue 15): exports and
imports through django-import-export (one event per account whose rows are in the file),
account settings, members, token revocations and API key names."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from console.models import ApiToken, AuditAction, AuditEvent, Membership
from logs.admin import RequestLogAdmin
from logs.models import ApiKey
from tests.factories import make_log, make_user

pytestmark = pytest.mark.django_db
BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def root(client):
    user = get_user_model().objects.create_superuser("root@ops.test", "root@ops.test", "pw-for-tests-1")
    client.force_login(user)
    return user


def _events(account, action):
    return list(AuditEvent.objects.filter(account=account, action=action).values_list("username", "details"))


def _format(form, name="csv") -> str:
    return next(str(value) for value, label in form.fields["format"].choices if label.lower() == name)


def _post_export(client, url: str):
    form = client.get(url).context["form"]
    return client.post(url, {"format": _format(form), "resource": "0"}, REMOTE_ADDR="203.0.113.9")


def test_request_log_export_is_logged_per_account_with_filters(client, root, acme, globex):
    for i in range(3):
        make_log(acme, request_id=f"acme-{i}", timestamp=BASE)
    make_log(globex, request_id="globex-1", timestamp=BASE)
    query = "?window=all&timestamp__gte=2026-11-20T00:00:00Z&timestamp__lt=2026-11-21T00:00:00Z"
    response = _post_export(client, reverse("admin:logs_requestlog_export") + query)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    filters = {"window": "all", "timestamp__gte": "2026-11-20T00:00:00Z", "timestamp__lt": "2026-11-21T00:00:00Z"}
    common = {"via": "admin", "model": "request logs", "format": "csv", "filters": filters}
    assert _events(acme, AuditAction.ADMIN_EXPORT) == [("root@ops.test", common | {"rows": 3})]
    assert _events(globex, AuditAction.ADMIN_EXPORT) == [("root@ops.test", common | {"rows": 1})]
    event = AuditEvent.objects.get(account=acme)
    assert (event.user, event.ip_address) == (root, "203.0.113.9")
    assert event.detail_lines() == [
        "3 request logs, csv",
        "filters: timestamp__gte=2026-11-20T00:00:00Z, timestamp__lt=2026-11-21T00:00:00Z, window=all",
    ]


def test_an_export_refused_over_the_cap_writes_no_event(client, root, acme, monkeypatch):
    monkeypatch.setattr(RequestLogAdmin, "EXPORT_ROW_CAP", 1)
    make_log(acme, timestamp=BASE)
    make_log(acme, timestamp=BASE)
    response = _post_export(client, reverse("admin:logs_requestlog_export") + "?window=all")
    assert response.status_code == 200 and "more than 1 rows" in response.content.decode()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("columns", [["slug", "name"], ["name"]])
def test_account_export_goes_into_each_exported_accounts_log(client, root, acme, globex, columns):
    # Without the slug column the accounts are read from the exported queryset.
    url = reverse("admin:console_account_export")
    form = client.get(url).context["form"]
    picked = {name: "on" for name in form.fields if name.split("_", 1)[-1] in columns}
    response = client.post(url, {"format": _format(form), "resource": "0", **picked})
    assert response.status_code == 200
    assert response.content.decode().splitlines()[0] == ",".join(columns)
    assert [d["rows"] for _, d in _events(acme, AuditAction.ADMIN_EXPORT)] == [1]
    assert [d["model"] for _, d in _events(globex, AuditAction.ADMIN_EXPORT)] == ["accounts"]


def test_api_key_import_is_logged_with_counts(client, root, acme, globex):
    ApiKey.objects.create(account=acme, identifier="team-a", fingerprint="f" * 64, first_seen=BASE, last_seen=BASE)
    url = reverse("admin:logs_apikey_import")
    form = client.get(url).context["form"]
    text = "account,identifier,display_name\r\nacme,team-a,Team A\r\n"
    upload = SimpleUploadedFile("keys.csv", text.encode(), content_type="text/csv")
    preview = client.post(url, {"format": _format(form), "resource": "0", "import_file": upload})
    assert not AuditEvent.objects.exists()  # the dry run writes nothing
    confirm = preview.context["confirm_form"]
    client.post(reverse("admin:logs_apikey_process_import"), confirm.initial, follow=True)
    assert ApiKey.objects.get().display_name == "Team A"
    details = {"via": "admin", "model": "api keys", "file": "keys.csv", "updated": 1}
    assert _events(acme, AuditAction.ADMIN_IMPORT) == [("root@ops.test", details)]
    assert not AuditEvent.objects.filter(account=globex).exists()


def _account_form(acme, **fields) -> dict:
    data = {
        "slug": acme.slug,
        "name": acme.name,
        "tier": acme.tier,
        "timezone": acme.timezone,
        "retention_days_override": "",
        "created_at_0": "2026-11-01",
        "created_at_1": "00:00:00",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    return data | fields


def test_operator_changes_of_retention_and_tier_are_logged(client, root, acme):
    response = client.post(
        f"/admin/console/account/{acme.pk}/change/",
        _account_form(acme, tier="professional", retention_days_override="180"),
    )
    assert response.status_code == 302, response.content.decode()[:1000]
    changes = {"tier": ["standard", "professional"], "retention_days_override": [None, 180]}
    assert _events(acme, AuditAction.SETTINGS_CHANGED) == [("root@ops.test", {"via": "admin", "changes": changes})]


def test_members_added_and_removed_in_the_admin_are_logged(client, root, acme, alice):
    newcomer = make_user("nina@acme.test")
    alice_membership = Membership.objects.get(user=alice)
    data = _account_form(
        acme,
        **{
            "memberships-TOTAL_FORMS": "2",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": str(alice_membership.pk),
            "memberships-0-account": str(acme.pk),
            "memberships-0-user": str(alice.pk),
            "memberships-0-role": "owner",
            "memberships-0-created_at_0": "2026-11-01",
            "memberships-0-created_at_1": "00:00:00",
            "memberships-0-DELETE": "on",
            "memberships-1-account": str(acme.pk),
            "memberships-1-user": str(newcomer.pk),
            "memberships-1-role": "admin",
            "memberships-1-created_at_0": "2026-11-01",
            "memberships-1-created_at_1": "00:00:00",
        },
    )
    response = client.post(f"/admin/console/account/{acme.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(Membership.objects.filter(account=acme).values_list("user__username", "role")) == [
        ("nina@acme.test", "admin")
    ]
    assert _events(acme, AuditAction.MEMBER_REMOVED) == [
        ("root@ops.test", {"member": "alice@acme.test", "role": "owner", "via": "admin"})
    ]
    assert _events(acme, AuditAction.MEMBER_ADDED) == [
        ("root@ops.test", {"member": "nina@acme.test", "role": "admin", "via": "admin"})
    ]


def test_a_token_revoked_in_the_admin_is_logged(client, root, acme):
    token, _ = ApiToken.generate(account=acme, scope="ingest", name="gw")
    data = {"name": "gw", "revoked_at_0": "2026-12-01", "revoked_at_1": "10:00:00"}
    response = client.post(f"/admin/console/apitoken/{token.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:1000]
    details = {"token_id": token.pk, "hint": token.hint, "name": "gw", "scope": "ingest", "via": "admin"}
    assert _events(acme, AuditAction.TOKEN_REVOKED) == [("root@ops.test", details)]


def test_a_key_named_in_the_admin_is_logged(client, root, acme):
    key = ApiKey.objects.create(
        account=acme, identifier="team-a", fingerprint="f" * 64, first_seen=BASE, last_seen=BASE
    )
    response = client.post(f"/admin/logs/apikey/{key.pk}/change/", {"display_name": "Team A"})
    assert response.status_code == 302, response.content.decode()[:1000]
    details = {"identifier": "team-a", "name": ["", "Team A"], "via": "admin"}
    assert _events(acme, AuditAction.KEY_RENAMED) == [("root@ops.test", details)]
    event = AuditEvent.objects.get()
    assert event.detail_lines() == ["team-a: “” → “Team A” (admin)"]
