"""Login throttling (django-axes, keyed by user name + client IP) through the login form,
and the security headers (HSTS, Content-Security-Policy) of production and DEBUG settings."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import override_settings

from console.services import token_create
from tests.factories import make_log

PASSWORD = "pw-for-tests-1"
LOGIN = "/accounts/login/"
ROOT = Path(__file__).resolve().parents[2]


def _post(client, password, ip="192.0.2.10", username="alice@acme.test", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def _fail_until_locked(client, ip="192.0.2.10"):
    # The limit-th wrong password is the one that locks.
    for attempt in range(1, settings.AXES_FAILURE_LIMIT):
        response = _post(client, f"wrong-{attempt}", ip)
        assert response.status_code == 200, attempt
        assert "Please enter a correct" in response.content.decode()
    locked = _post(client, "wrong-last", ip)
    assert locked.status_code == 429
    return locked


@pytest.mark.django_db
def test_defaults_are_five_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


@pytest.mark.django_db
def test_sixth_wrong_password_gets_the_lockout_page_with_the_wait(client, alice):
    _fail_until_locked(client)
    sixth = _post(client, "wrong-6")
    assert sixth.status_code == 429
    body = sixth.content.decode()
    assert "Too many failed log-ins" in body
    assert "Try again in 15 minutes." in body
    assert "alice@acme.test" in body
    assert 'href="/static/css/meterlog.css"' in body  # the console's page shell, not a bare text
    assert sixth["Retry-After"] == "900"
    # Locked means locked: the right password is refused too, and no session starts.
    right = _post(client, PASSWORD)
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    attempt = AccessAttempt.objects.get(username="alice@acme.test")
    assert attempt.ip_address == "192.0.2.10" and attempt.failures_since_start == 7


@pytest.mark.django_db
def test_lockout_is_per_user_and_ip_not_per_user(client, alice, charlie):
    _fail_until_locked(client, ip="192.0.2.10")
    # The same user from another address gets the normal form with its error...
    other_ip = _post(client, "wrong-again", ip="198.51.100.7")
    assert other_ip.status_code == 200 and "Please enter a correct" in other_ip.content.decode()
    # ...and can log in from there.
    assert _post(client, PASSWORD, ip="198.51.100.7").status_code == 302
    client.logout()
    # Another user from the locked address is not locked either.
    assert _post(client, PASSWORD, ip="192.0.2.10", username="charlie@acme.test").status_code == 302


@pytest.mark.django_db
def test_right_password_after_the_cool_off_logs_in(client, alice, acme):
    make_log(acme, request_id="acme-1")
    _fail_until_locked(client)
    assert _post(client, PASSWORD).status_code == 429
    # Time travel: the failures happened 16 minutes ago, past the 15-minute cool-off.
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))
    response = _post(client, PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/logs/"
    assert client.get("/logs/").status_code == 200
    # A success forgets the failures (AXES_RESET_ON_SUCCESS): a new typo is just a typo.
    assert not AccessAttempt.objects.exists()
    client.logout()
    assert _post(client, "typo").status_code == 200


@pytest.mark.django_db
@override_settings(AXES_FAILURE_LIMIT=2, AXES_COOLOFF_TIME=timedelta(minutes=1))
def test_limit_and_cool_off_come_from_settings(client, alice):
    assert _post(client, "wrong-1").status_code == 200
    locked = _post(client, "wrong-2")
    assert locked.status_code == 429 and "Try again in 1 minute." in locked.content.decode()
    assert locked["Retry-After"] == "60"


@pytest.mark.django_db
def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(client, alice):
    # A client cannot dodge the lock by writing a new X-Forwarded-For each time.
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _post(client, f"wrong-{attempt}", HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}")
    response = _post(client, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert response.status_code == 429
    assert AccessAttempt.objects.get().ip_address == "192.0.2.10"


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_the_address_it_appended_counts(client, alice):
    proxy = "10.0.0.2"
    # Each request's right-most entry is the one the proxy wrote; the left ones are the client's.
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _post(client, f"wrong-{attempt}", ip=proxy, HTTP_X_FORWARDED_FOR=f"6.6.6.{attempt}, 203.0.113.9")
    assert AccessAttempt.objects.get().ip_address == "203.0.113.9"
    assert _post(client, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    # Another client behind the same proxy is not locked out.
    assert _post(client, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.50").status_code == 302


@pytest.mark.django_db
def test_api_token_auth_is_not_throttled_by_login_failures(client, alice, acme):
    make_log(acme, request_id="acme-1")
    _, raw = token_create(account=acme, scope="read", name="reader")
    _fail_until_locked(client)
    # Bearer tokens do not go through the login backends: a locked-out address still reads.
    response = client.get("/api/v1/logs", HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 200, response.content
    assert [row["request_id"] for row in response.json()["results"]] == ["acme-1"]


def _headers_in_a_fresh_process(**env) -> dict:
    # Settings are read from the environment once, at start-up: a process of its own.
    script = (
        "import json\n"
        "from django.test import Client\n"
        "r = Client().get('/accounts/login/', secure=True)\n"
        "print(json.dumps({'status': r.status_code, **dict(r.headers)}))\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "SECURE_HSTS_SECONDS")}
    base.update(ALLOWED_HOSTS="testserver", STATIC_MANIFEST="0", **env)
    out = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", script],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


CSP_PARTS = [
    "default-src 'self'",
    "script-src 'self'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
]


def test_production_sends_hsts_and_csp(tmp_path):
    headers = _headers_in_a_fresh_process(
        DEBUG="0", SECRET_KEY="a-real-secret-for-this-test", METERLOG_VAR_DIR=str(tmp_path)
    )
    assert headers["status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    policy = headers["Content-Security-Policy"]
    for part in CSP_PARTS:
        assert part in policy.split("; "), (part, policy)
    assert "unsafe-eval" not in policy and "script-src 'self';" in policy + ";"


def test_hsts_length_comes_from_the_environment(tmp_path):
    headers = _headers_in_a_fresh_process(
        DEBUG="0", SECRET_KEY="a-real-secret", SECURE_HSTS_SECONDS="600", SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        METERLOG_VAR_DIR=str(tmp_path),
    )  # fmt: skip
    assert headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"


def test_debug_sends_csp_but_no_hsts(tmp_path):
    headers = _headers_in_a_fresh_process(DEBUG="1", METERLOG_VAR_DIR=str(tmp_path))
    assert headers["status"] == 200
    assert "Strict-Transport-Security" not in headers
    for part in CSP_PARTS:
        assert part in headers["Content-Security-Policy"].split("; ")
