"""create_account, create_token and create_member: the operator's way in, and their errors."""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from console.models import Account, ApiToken, Membership, hash_token
from logs.models import RequestLog
from logs.partitions import forget_known_partitions

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    # partitions._known outlives a test's rolled-back transaction (see the report on
    # ensure_partitions); start every test from the catalog.
    forget_known_partitions()


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_account_with_every_option():
    run("create_account", "initech", "--name", "Initech", "--tier", "enterprise", "--retention-days", "400",
        "--timezone", "Europe/Berlin")  # fmt: skip
    account = Account.objects.get(slug="initech")
    assert (account.name, account.tier, account.timezone) == ("Initech", "enterprise", "Europe/Berlin")
    assert account.retention_days == 400 and account.privacy_mode is False


def test_create_account_defaults_to_the_tier_retention_and_utc():
    out = run("create_account", "hooli", "--name", "Hooli", "--tier", "professional")
    account = Account.objects.get(slug="hooli")
    assert (account.retention_days, account.timezone, account.retention_days_override) == (90, "UTC", None)
    assert "hooli" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tier", "gold"], "'gold' is not a tier"),
        (["--tier", "standard", "--timezone", "Mars/Olympus"], "Mars/Olympus"),
        (["--tier", "standard", "--retention-days", "0"], "between 1 and 3650"),
    ],
)
def test_create_account_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        run("create_account", "newco", "--name", "NewCo", *args)
    assert not Account.objects.filter(slug="newco").exists()


def test_create_account_duplicate_and_bad_slug(acme):
    with pytest.raises(CommandError, match="already exists"):
        run("create_account", "acme", "--name", "Other", "--tier", "standard")
    with pytest.raises(CommandError, match="not a valid slug"):
        run("create_account", "no spaces", "--name", "X", "--tier", "standard")
    assert Account.objects.count() == 1


def test_create_token_prints_the_raw_token_alone_on_the_last_line(acme):
    out = run("create_token", "acme", "--scope", "ingest", "--name", "prod gateway")
    raw = out.rstrip("\n").splitlines()[-1]
    assert raw.startswith("mlt_") and " " not in raw
    token = ApiToken.objects.get(account=acme)
    assert (token.scope, token.name, token.token_hash) == ("ingest", "prod gateway", hash_token(raw))
    assert raw not in repr(list(ApiToken.objects.values()))  # stored hashed only


def test_created_token_works_against_the_api(client, acme):
    raw = run("create_token", "acme", "--scope", "ingest").rstrip("\n").splitlines()[-1]
    body = [{"request_id": "r1", "timestamp": "2026-11-20T12:00:00Z", "model": "m", "status": "success"}]
    response = client.post(
        "/api/v1/ingest",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.json()["accepted"] == 1
    assert RequestLog.objects.get(request_id="r1").account_id == acme.pk


@pytest.mark.parametrize(
    ("args", "message"),
    [(["nope", "--scope", "read"], "No account with the slug 'nope'"), (["acme", "--scope", "write"], "not a scope")],
)
def test_create_token_bad_input(acme, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_token", *args)
    assert ApiToken.objects.count() == 0


def test_create_member_makes_a_user_who_can_log_in(client, acme):
    out = run("create_member", "acme", "dana@acme.test", "--password", "long-enough-pw-42", "--role", "admin")
    assert "Created user dana@acme.test" in out
    user = get_user_model().objects.get(username="dana@acme.test")
    assert user.email == "dana@acme.test"
    assert Membership.objects.get(user=user).role == "admin"
    # Through the login form: django-axes' backend checks every login against a request.
    response = client.post("/accounts/login/", {"username": "dana@acme.test", "password": "long-enough-pw-42"})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(user.pk)


def test_create_member_adds_an_existing_user_and_keeps_the_password(alice, globex):
    out = run("create_member", "globex", "alice@acme.test", "--password", "ignored-other-pw-9", "--role", "viewer")
    assert "password unchanged" in out
    assert sorted(alice.memberships.values_list("account__slug", "role")) == [("acme", "owner"), ("globex", "viewer")]
    alice.refresh_from_db()
    assert alice.check_password("pw-for-tests-1")
    run("create_member", "globex", "alice@acme.test", "--password", "x", "--role", "admin")
    assert alice.memberships.get(account=globex).role == "admin"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "e@x.test", "--password", "long-enough-pw-42", "--role", "owner"], "No account"),
        (["acme", "e@x.test", "--password", "long-enough-pw-42", "--role", "boss"], "not a role"),
        (["acme", "not-an-email", "--password", "long-enough-pw-42", "--role", "viewer"], "not a valid email"),
        (["acme", "e@x.test", "--password", "123", "--role", "viewer"], "too short"),
    ],
)
def test_create_member_bad_input(acme, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_member", *args)
    assert not get_user_model().objects.filter(username="e@x.test").exists()
