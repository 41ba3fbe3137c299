"""Demo data: deterministic, valid for ingest, realistic in shape, and safe to seed twice."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.test import RequestFactory

from console.models import Account, Membership
from logs.demo import DEMO_ACCOUNTS, OPERATOR_EMAIL, demo_records, hour_records, hourly_count, load_trace
from logs.ingest.validation import validate_record
from logs.models import ApiKey, RequestLog

ACME, GLOBEX = DEMO_ACCOUNTS
NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)  # a Wednesday


def test_trace_copies_are_the_real_rows():
    conv, code = load_trace("conv"), load_trace("code")
    assert (len(conv), len(code)) == (3228, 2205)
    # First shipped rows of each file, as in the Azure traces.
    assert (conv[0].prompt, conv[0].completion, conv[0].offset) == (374, 44, 0.0)
    assert (code[0].prompt, code[0].completion) == (4808, 10)
    assert max(r.offset for r in conv) < 3600


def test_an_hour_is_the_same_every_time():
    hour = datetime(2026, 11, 24, 10, tzinfo=UTC)
    first, again = hour_records(ACME, hour, NOW), hour_records(ACME, hour, NOW)
    assert first == again
    assert len(first) == len({r["request_id"] for r in first}) > 50
    assert all(hour.isoformat()[:13] == r["timestamp"][:13] for r in first)


def test_traffic_follows_the_local_day_and_the_week():
    # acme is on UTC: 10:00 on a weekday is busy, 03:00 quiet, Saturday 10:00 damped.
    weekday_peak = hourly_count(ACME, datetime(2026, 11, 24, 10, tzinfo=UTC))
    night = hourly_count(ACME, datetime(2026, 11, 24, 3, tzinfo=UTC))
    saturday = hourly_count(ACME, datetime(2026, 11, 21, 10, tzinfo=UTC))
    assert weekday_peak > 4 * night
    assert weekday_peak > 2 * saturday
    # globex is in Kolkata (UTC+05:30): its 10:00 local is 04:30 UTC.
    assert hourly_count(GLOBEX, datetime(2026, 11, 24, 4, tzinfo=UTC)) > hourly_count(
        GLOBEX, datetime(2026, 11, 24, 20, tzinfo=UTC)
    )


def test_a_week_is_valid_ingest_input_with_a_realistic_mix():
    records = [r for demo in DEMO_ACCOUNTS for r in demo_records(demo, NOW - timedelta(days=7), NOW)]
    assert 20_000 <= len(records) <= 40_000
    assert all(datetime.fromisoformat(r["timestamp"]) <= NOW for r in records)
    sample = records[::50]
    assert [validate_record(r, now=NOW)[1] for r in sample] == [None] * len(sample)
    errors = Counter(r["error_code"] for r in records if r["status"] == "error")
    assert 0.03 <= sum(errors.values()) / len(records) <= 0.08
    assert {"rate_limit_exceeded", "insufficient_balance", "context_length_exceeded", "upstream_error"} <= set(errors)
    failed = [r for r in records if r["status"] == "error"]
    assert all(r["error_message"] and r["prompt_tokens"] == r["completion_tokens"] == 0 for r in failed)
    models = Counter(r["model"] for r in records)
    assert {"gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022", "o3-mini", "acme-support-ft-v3"} == set(models)
    assert any(r["api_key"].startswith("sk-") for r in records)
    assert all("messages" not in r["request_params"] for r in records)


@pytest.mark.django_db
def test_seed_demo_twice_stores_each_request_once(tmp_path, capsys, settings):
    # Five demo users, hashed and checked twice: PBKDF2 would dominate the test's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    logins = tmp_path / "logins.json"
    call_command("seed_demo", "--hours", "4", "--logins-file", str(logins))
    first_out = capsys.readouterr().out
    saved = json.loads(logins.read_text())
    counts = {a.slug: RequestLog.objects.filter(account=a).count() for a in Account.objects.all()}
    assert set(counts) == {"acme", "globex"} and all(n > 5 for n in counts.values())

    call_command("seed_demo", "--hours", "4", "--logins-file", str(logins))
    second_out = capsys.readouterr().out
    again = {a.slug: RequestLog.objects.filter(account=a).count() for a in Account.objects.all()}
    # Only the minutes that passed between the runs may add rows.
    assert all(0 <= again[slug] - counts[slug] <= 5 for slug in counts)
    assert json.loads(logins.read_text()) == saved
    assert saved[OPERATOR_EMAIL] in first_out and saved[OPERATOR_EMAIL] in second_out

    operator = get_user_model().objects.get(username=OPERATOR_EMAIL)
    assert operator.is_staff and operator.is_superuser
    # django-axes' backend checks every login against a request (the client's IP).
    login = RequestFactory().post("/accounts/login/")
    assert authenticate(login, username="alice@acme.example", password=saved["alice@acme.example"]) is not None
    dana = Membership.objects.filter(user__username="dana@consulting.example")
    assert sorted(dana.values_list("account__slug", "role")) == [("acme", "viewer"), ("globex", "admin")]
    # The secret-looking key is stored masked, never as sent.
    identifiers = set(ApiKey.objects.filter(account__slug="acme").values_list("identifier", flat=True))
    assert "support-bot" in identifiers
    assert any(i.startswith("sk-…") for i in identifiers)
    assert not RequestLog.objects.filter(api_key__startswith="sk-proj-").exists()
    # Priced through ingest from the price list when one is loaded; the fine-tune never is.
    assert not RequestLog.objects.filter(model="acme-support-ft-v3", cost__isnull=False).exists()
