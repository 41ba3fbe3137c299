"""The console shell and the owners' settings pages through the Django test client:
login, account switching, roles, tokens and members."""

import hashlib
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from console.models import ApiToken, Membership
from tests.factories import make_log, make_user

PASSWORD = "pw-for-tests-1"


# --- Login and shell -------------------------------------------------------------------


@pytest.mark.django_db
def test_login_with_email_and_password(client, alice, acme):
    make_log(acme, request_id="acme-1")
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert '<label for="id_username">Email</label>' in page.content.decode()

    wrong = client.post("/accounts/login/", {"username": "alice@acme.test", "password": "nope"})
    assert wrong.status_code == 200 and "Please enter a correct" in wrong.content.decode()

    response = client.post("/accounts/login/", {"username": "alice@acme.test", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/logs/"
    logs = client.get("/logs/")
    assert logs.status_code == 200 and [r.request_id for r in logs.context["rows"]] == ["acme-1"]


@pytest.mark.django_db
def test_home_is_the_dashboard_and_logout_is_a_post(client, alice):
    client.force_login(alice)
    home = client.get("/")
    assert home.status_code == 200 and home.templates[0].name == "analytics/dashboard.html"
    body = client.get("/logs/").content.decode()
    assert 'action="/accounts/logout/"' in body and 'method="post"' in body
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/logs/").status_code == 302  # logged out


@pytest.mark.django_db
def test_user_without_account_sees_the_no_account_page(client):
    loner = make_user("loner@nowhere.test")
    client.force_login(loner)
    response = client.get("/logs/")
    assert response.status_code == 302 and response["Location"] == "/no-account/"
    page = client.get("/no-account/")
    assert page.status_code == 200 and "not a member of any account" in page.content.decode()


@pytest.mark.django_db
def test_nav_shows_settings_to_owners_only(client, alice, charlie):
    client.force_login(alice)
    assert 'href="/settings/"' in client.get("/logs/").content.decode()
    client.force_login(charlie)
    assert 'href="/settings/"' not in client.get("/logs/").content.decode()


@pytest.mark.django_db
def test_posts_need_a_csrf_token(alice, acme):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/settings/tokens/new/", {"name": "x", "scope": "read"})
    assert response.status_code == 403
    assert not ApiToken.objects.exists()


# --- Account switching -----------------------------------------------------------------


@pytest.mark.django_db
def test_member_of_two_accounts_switches_between_them(client, acme, globex):
    both = make_user("dana@both.test", account=acme, role="viewer")
    Membership.objects.create(user=both, account=globex, role="owner")
    make_log(acme, request_id="acme-row")
    make_log(globex, request_id="globex-row")
    client.force_login(both)

    page = client.get("/logs/")
    body = page.content.decode()
    assert 'name="account"' in body and "Globex" in body and "Acme Corp" in body
    assert [r.request_id for r in page.context["rows"]] == ["acme-row"]  # "Acme Corp" sorts first

    response = client.post("/switch-account/", {"account": globex.pk, "next": "/keys/"})
    assert response.status_code == 302 and response["Location"] == "/keys/"
    assert [r.request_id for r in client.get("/logs/").context["rows"]] == ["globex-row"]
    assert client.get("/settings/").status_code == 200  # owner in globex, viewer in acme

    # An outside URL in "next" is not followed.
    response = client.post("/switch-account/", {"account": acme.pk, "next": "https://evil.test/"})
    assert response["Location"] == "/logs/"
    assert client.get("/settings/").status_code == 403


@pytest.mark.django_db
def test_switching_to_an_account_you_are_not_in_is_403(client, alice, globex):
    make_log(globex, request_id="globex-row")
    client.force_login(alice)
    response = client.post("/switch-account/", {"account": globex.pk, "next": "/logs/"})
    assert response.status_code == 403
    assert "globex-row" not in client.get("/logs/").content.decode()


@pytest.mark.django_db
def test_operator_can_switch_to_any_account(client, olivia, acme, globex):
    make_log(globex, request_id="globex-row")
    make_log(acme, request_id="acme-row")
    client.force_login(olivia)
    response = client.post("/switch-account/", {"account": globex.pk, "next": "/logs/"})
    assert response.status_code == 302
    assert [r.request_id for r in client.get("/logs/").context["rows"]] == ["globex-row"]
    # An operator without a membership reads the account as a viewer: no owner settings.
    assert client.get("/settings/").status_code == 403
    assert client.get("/logs/globex-row/").status_code == 200
    assert client.get("/logs/acme-row/").status_code == 404  # still one account at a time


# --- Roles -----------------------------------------------------------------------------

SETTINGS_GETS = ["/settings/", "/settings/tokens/", "/settings/members/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", SETTINGS_GETS)
def test_viewer_cannot_open_settings(client, charlie, url):
    client.force_login(charlie)
    response = client.get(url)
    assert response.status_code == 403
    assert "This page needs the owner role" in response.content.decode()


@pytest.mark.django_db
def test_viewer_cannot_post_settings(client, charlie, alice, acme):
    client.force_login(charlie)
    owner = Membership.objects.get(user=alice)
    attempts = [
        ("/settings/", {"name": "Hacked", "timezone": "UTC"}),
        ("/settings/tokens/new/", {"name": "x", "scope": "read"}),
        ("/settings/members/add/", {"email": "eve@evil.test", "password": "Long-enough-pw-42", "role": "owner"}),
        (f"/settings/members/{owner.pk}/remove/", {}),
        (f"/settings/members/{owner.pk}/role/", {"role": "viewer"}),
    ]
    for url, data in attempts:
        assert client.post(url, data).status_code == 403, url
    acme.refresh_from_db()
    assert acme.name == "Acme Corp" and not ApiToken.objects.exists()
    assert Membership.objects.get(pk=owner.pk).role == "owner"
    assert not get_user_model().objects.filter(username="eve@evil.test").exists()


# --- Account settings ------------------------------------------------------------------


@pytest.mark.django_db
def test_owner_updates_account_settings_but_not_tier(client, alice, acme):
    client.force_login(alice)
    response = client.post(
        "/settings/",
        {"name": "Acme Inc", "timezone": "Mars/Olympus", "privacy_mode": "on", "tier": "enterprise"},
    )
    assert response.status_code == 200 and "Mars/Olympus" in response.content.decode()
    assert response.context["form"].errors["timezone"]
    acme.refresh_from_db()
    assert acme.name == "Acme Corp"

    response = client.post(
        "/settings/", {"name": "Acme Inc", "timezone": "Europe/Berlin", "privacy_mode": "on", "tier": "enterprise"}
    )
    assert response.status_code == 302
    acme.refresh_from_db()
    # Privacy mode has its own switch (POST /settings/privacy/, tests/console/test_privacy.py).
    assert (acme.name, acme.timezone, acme.privacy_mode, acme.tier) == ("Acme Inc", "Europe/Berlin", False, "standard")


# --- API tokens ------------------------------------------------------------------------


def _database_dump() -> str:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_token_is_shown_once_and_only_its_hash_is_stored(client, alice, acme):
    client.force_login(alice)
    response = client.post("/settings/tokens/new/", {"name": "prod gateway", "scope": "ingest"})
    assert response.status_code == 200
    raw = response.context["raw_token"]
    assert raw.startswith("mlt_") and raw in response.content.decode()
    assert "no-store" in response["Cache-Control"]

    token = ApiToken.objects.get()
    assert (token.account, token.scope, token.name, token.created_by) == (acme, "ingest", "prod gateway", alice)
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in _database_dump()  # not in any table, sessions included
    listing = client.get("/settings/tokens/").content.decode()
    assert raw not in listing and token.hint in listing

    # The new token works against the API.
    api = client.post("/api/v1/ingest", data="[]", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.status_code == 200


@pytest.mark.django_db
def test_token_form_errors_and_revoke(client, alice, bob, globex):
    client.force_login(alice)
    response = client.post("/settings/tokens/new/", {"name": "x", "scope": "admin"})
    assert response.status_code == 400 and response.context["form"].errors["scope"]
    assert not ApiToken.objects.exists()

    client.post("/settings/tokens/new/", {"name": "", "scope": "read"})
    mine = ApiToken.objects.get()
    theirs, _ = ApiToken.generate(account=globex, scope="read")
    assert client.post(f"/settings/tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None

    response = client.post(f"/settings/tokens/{mine.pk}/revoke/")
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.revoked_at is not None
    assert client.get(f"/settings/tokens/{mine.pk}/revoke/").status_code == 405  # POST only


# --- Members ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_owner_adds_a_new_member_who_can_log_in(client, alice, acme):
    client.force_login(alice)
    response = client.post(
        "/settings/members/add/", {"email": "New.Person@acme.test", "password": "Long-enough-pw-42", "role": "viewer"}
    )
    assert response.status_code == 302
    membership = Membership.objects.get(account=acme, user__username="new.person@acme.test")
    assert membership.role == "viewer"
    other = Client()
    login = other.post("/accounts/login/", {"username": "new.person@acme.test", "password": "Long-enough-pw-42"})
    assert login.status_code == 302
    assert other.get("/settings/").status_code == 403


@pytest.mark.django_db
def test_member_add_validates_and_keeps_existing_passwords(client, alice, acme, bob):
    client.force_login(alice)
    # A new user needs a (good) password.
    response = client.post("/settings/members/add/", {"email": "x@acme.test", "password": "", "role": "viewer"})
    assert response.status_code == 400 and response.context["form"].errors["password"]
    response = client.post("/settings/members/add/", {"email": "x@acme.test", "password": "123", "role": "viewer"})
    assert response.status_code == 400 and response.context["form"].errors["password"]
    response = client.post("/settings/members/add/", {"email": "not-an-email", "password": "x", "role": "viewer"})
    assert response.context["form"].errors["email"]
    # Already a member.
    response = client.post("/settings/members/add/", {"email": "alice@acme.test", "password": "", "role": "viewer"})
    assert "already a member" in response.context["form"].errors["email"][0]
    # An existing user of another account is added; their password stays theirs.
    response = client.post(
        "/settings/members/add/", {"email": "bob@globex.test", "password": "Other-password-99", "role": "admin"}
    )
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.check_password(PASSWORD)
    assert Membership.objects.get(user=bob, account=acme).role == "admin"


@pytest.mark.django_db
def test_role_change_remove_and_last_owner_protection(client, alice, charlie, acme):
    client.force_login(alice)
    alice_m = Membership.objects.get(user=alice, account=acme)
    charlie_m = Membership.objects.get(user=charlie, account=acme)

    # The only owner can neither leave nor be demoted.
    response = client.post(f"/settings/members/{alice_m.pk}/remove/", follow=True)
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.filter(pk=alice_m.pk).exists()
    response = client.post(f"/settings/members/{alice_m.pk}/role/", {"role": "viewer"}, follow=True)
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.get(pk=alice_m.pk).role == "owner"

    # With a second owner both work.
    client.post(f"/settings/members/{charlie_m.pk}/role/", {"role": "owner"})
    assert Membership.objects.get(pk=charlie_m.pk).role == "owner"
    client.post(f"/settings/members/{alice_m.pk}/role/", {"role": "admin"})
    assert Membership.objects.get(pk=alice_m.pk).role == "admin"
    assert client.get("/settings/members/").status_code == 403  # alice is no owner any more

    client.force_login(charlie)
    response = client.post(f"/settings/members/{alice_m.pk}/remove/")
    assert response.status_code == 302
    assert list(Membership.objects.filter(account=acme).values_list("user__username", flat=True)) == [
        "charlie@acme.test"
    ]


@pytest.mark.django_db
def test_members_of_another_account_are_out_of_reach(client, alice, bob):
    client.force_login(alice)
    bob_m = Membership.objects.get(user=bob)
    assert client.post(f"/settings/members/{bob_m.pk}/remove/").status_code == 404
    assert client.post(f"/settings/members/{bob_m.pk}/role/", {"role": "viewer"}).status_code == 404
    assert Membership.objects.get(pk=bob_m.pk).role == "owner"
    assert "bob@globex.test" not in client.get("/settings/members/").content.decode()
