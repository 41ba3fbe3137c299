"""The log browser pages (/logs/, /logs/<id>/, /keys/, /pricing/) through the Django test
client, against known rows. Expected ids and sums are computed here from the rows' own
definition, independently of the code under test."""

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from logs import selectors
from logs.models import AccountModel, ApiKey, ModelPrice
from logs.views import PAGE_LIMIT
from tests.factories import make_log

BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet"]
KEYS = ["team-a", "team-b", "sk-…a1b2"]


def _spec(i: int) -> dict:
    """Row i of the known data: 24 rows over models, keys, statuses, IPs, tags and costs."""
    is_error = i % 5 == 0
    return {
        "request_id": f"req-{i:03d}",
        "timestamp": BASE + timedelta(minutes=10 * i),
        "model": MODELS[i % 3],
        "status": "error" if is_error else "success",
        "prompt_tokens": 100 + 10 * i,
        "completion_tokens": 3 * i,
        "cost": None if i % 7 == 3 else Decimal(i) / Decimal(1_000_000) + Decimal("0.000000000123"),
        "api_key": KEYS[i % 3],
        "ip_address": f"10.0.0.{i % 4}",
        "tags": {"team": "search" if i % 2 else "ads"},
        "error_code": ("rate_limit" if i % 10 == 0 else "timeout") if is_error else "",
        "error_message": ("Rate limit exceeded" if i % 10 == 0 else "Upstream timeout") if is_error else "",
    }


SPECS = [_spec(i) for i in range(24)]


def _load(account, specs=SPECS):
    for spec in specs:
        make_log(account, **spec)
    for model in {s["model"] for s in specs}:
        AccountModel.objects.create(account=account, model=model, first_seen=BASE, last_seen=BASE)
    for key in {s["api_key"] for s in specs}:
        ApiKey.objects.create(
            account=account, identifier=key, fingerprint=f"fp-{account.slug}-{key}", first_seen=BASE, last_seen=BASE
        )


def _ids(response) -> list[str]:
    return [row.request_id for row in response.context["rows"]]


def _newest_first(specs) -> list[str]:
    return [s["request_id"] for s in sorted(specs, key=lambda s: s["timestamp"], reverse=True)]


@pytest.fixture
def acme_logs(acme):
    _load(acme)
    return acme


@pytest.fixture
def globex_logs(globex):
    _load(
        globex,
        [
            {"request_id": "globex-secret-1", "timestamp": BASE, "model": "gpt-4o", "status": "success",
             "api_key": "globex-key", "cost": Decimal("5")},
            {"request_id": "req-000", "timestamp": BASE, "model": "gpt-4o", "status": "error",
             "api_key": "globex-key", "cost": Decimal("7")},
        ],
    )  # fmt: skip
    return globex


# --- Tenancy ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_shows_only_the_accounts_rows_and_totals(client, alice, acme_logs, globex_logs):
    client.force_login(alice)
    response = client.get("/logs/")
    assert response.status_code == 200
    assert _ids(response) == _newest_first(SPECS)
    totals = response.context["totals"]
    assert totals.requests == len(SPECS)
    assert totals.cost == sum(s["cost"] for s in SPECS if s["cost"] is not None)
    body = response.content.decode()
    assert "globex-secret-1" not in body and "globex-key" not in body

    # A filter on the other account's key or id finds nothing.
    response = client.get("/logs/", {"api_key": "globex-key"})
    assert _ids(response) == [] and response.context["totals"].requests == 0


@pytest.mark.django_db
def test_detail_of_another_accounts_request_is_404(client, alice, bob, acme_logs, globex_logs):
    client.force_login(alice)
    assert client.get("/logs/globex-secret-1/").status_code == 404
    assert client.get("/logs/no-such-id/").status_code == 404
    # The same request id in both accounts: each owner sees their own row.
    response = client.get("/logs/req-000/")
    assert response.status_code == 200 and response.context["row"].account_id == acme_logs.pk
    client.force_login(bob)
    response = client.get("/logs/req-000/")
    assert response.context["row"].account_id == globex_logs.pk
    assert response.context["row"].cost == Decimal("7")


@pytest.mark.django_db
def test_keys_page_lists_only_the_accounts_keys(client, alice, acme_logs, globex_logs):
    client.force_login(alice)
    response = client.get("/keys/")
    assert sorted(k.identifier for k in response.context["keys"]) == sorted(KEYS)
    assert "globex-key" not in response.content.decode()


@pytest.mark.django_db
def test_anonymous_user_is_sent_to_login(client, acme_logs):
    response = client.get("/logs/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- Filters ---------------------------------------------------------------------------


FILTER_CASES = [
    ({"model": "gpt-4o"}, lambda s: s["model"] == "gpt-4o"),
    ({"model": ["gpt-4o", "claude-3-5-sonnet"]}, lambda s: s["model"] != "gpt-4o-mini"),
    ({"status": "error"}, lambda s: s["status"] == "error"),
    ({"api_key": "sk-…a1b2"}, lambda s: s["api_key"] == "sk-…a1b2"),
    ({"ip": "10.0.0.2"}, lambda s: s["ip_address"] == "10.0.0.2"),
    ({"error_code": "rate_limit"}, lambda s: s["error_code"] == "rate_limit"),
    ({"q": "TIMEOUT"}, lambda s: "timeout" in s["error_message"].lower()),
    ({"q": "req-01"}, lambda s: s["request_id"].startswith("req-01")),
    ({"min_tokens": "250", "max_tokens": "300"}, lambda s: 250 <= s["prompt_tokens"] + s["completion_tokens"] <= 300),
    ({"min_cost": "0.00001", "max_cost": "0.000015"},
     lambda s: s["cost"] is not None and Decimal("0.00001") <= s["cost"] <= Decimal("0.000015")),
    ({"tag": "team:search"}, lambda s: s["tags"]["team"] == "search"),
    ({"unpriced": "true"}, lambda s: s["cost"] is None),
    # start inclusive, end exclusive; naive values are in the viewer's zone (UTC here).
    ({"start": "2026-11-20T13:00", "end": "2026-11-20T14:00:00"},
     lambda s: BASE + timedelta(hours=1) <= s["timestamp"] < BASE + timedelta(hours=2)),
    ({"model": "gpt-4o-mini", "status": "success", "api_key": "team-a"},
     lambda s: s["model"] == "gpt-4o-mini" and s["status"] == "success" and s["api_key"] == "team-a"),
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "predicate"), FILTER_CASES)
def test_filters_in_the_url_narrow_the_list(client, alice, acme_logs, globex_logs, params, predicate):
    client.force_login(alice)
    response = client.get("/logs/", params)
    assert response.status_code == 200
    expected = _newest_first([s for s in SPECS if predicate(s)])
    assert expected, "each case must select some rows"
    assert _ids(response) == expected
    assert response.context["totals"].requests == len(expected)


@pytest.mark.django_db
def test_custom_range_is_read_in_the_viewers_zone(client, alice, acme_logs):
    client.force_login(alice)
    client.cookies["meterlog_tz"] = "Europe/Berlin"  # UTC+1 in November
    response = client.get("/logs/", {"start": "2026-11-20T14:00", "end": "2026-11-20T15:00"})
    expected = _newest_first(
        [s for s in SPECS if BASE + timedelta(hours=1) <= s["timestamp"] < BASE + timedelta(hours=2)]
    )
    assert _ids(response) == expected
    body = response.content.decode()
    # Rows show local time, with the UTC time in the title; the inputs keep the local value.
    assert ">2026-11-20 14:00:00</time>" in body
    assert 'title="2026-11-20 13:00:00.000000 UTC"' in body
    assert 'name="start" value="2026-11-20T14:00"' in body


@pytest.mark.django_db
def test_range_preset_counts_back_from_now(client, alice, acme):
    now = timezone.now()
    make_log(acme, request_id="recent", timestamp=now - timedelta(minutes=30))
    make_log(acme, request_id="yesterday", timestamp=now - timedelta(hours=30))
    make_log(acme, request_id="last-week", timestamp=now - timedelta(days=6))
    client.force_login(alice)
    assert _ids(client.get("/logs/", {"range": "1h"})) == ["recent"]
    assert _ids(client.get("/logs/", {"range": "24h"})) == ["recent"]
    assert _ids(client.get("/logs/", {"range": "7d"})) == ["recent", "yesterday", "last-week"]


@pytest.mark.django_db
def test_invalid_filters_show_their_errors_and_no_rows(client, alice, acme_logs):
    client.force_login(alice)
    response = client.get("/logs/", {"status": "weird", "min_tokens": "lots", "start": "yesterday", "model": "gpt-4o"})
    assert response.status_code == 400
    assert response.context["rows"] == [] and response.context["totals"] is None
    assert set(response.context["errors"]) == {"status", "min_tokens", "start"}
    body = html.unescape(response.content.decode())
    assert "Unknown status 'weird'" in body
    assert "Enter a date-time such as" in body
    # Each message sits in the filter bar under its own field.
    status_field = body[body.index('id="f-status"') : body.index('id="f-key"')]
    assert "Unknown status 'weird'" in status_field
    assert "No results: the filters above have errors." in body


@pytest.mark.django_db
def test_malformed_cursor_is_reported(client, alice, acme_logs):
    client.force_login(alice)
    response = client.get("/logs/", {"cursor": "not-a-cursor!"})
    assert response.status_code == 400
    assert "cursor is malformed" in response.content.decode()


# --- Pages and totals ------------------------------------------------------------------


def _older_href(response) -> str | None:
    match = re.search(r'rel="next" href="([^"]+)"', response.content.decode())
    # The links are query strings relative to the page, as a browser resolves them.
    return "/logs/" + html.unescape(match.group(1)) if match else None


@pytest.mark.django_db
def test_older_links_walk_every_row_once_keeping_the_filters(client, alice, acme, globex):
    # 2.5 pages of rows that match, with timestamp ties across a page boundary, plus rows
    # the filter excludes in between.
    specs = []
    for i in range(PAGE_LIMIT * 2 + 25):
        ts = BASE + timedelta(seconds=i // 3)
        specs.append({"request_id": f"m-{i:04d}", "timestamp": ts, "model": "gpt-4o"})
        if i % 4 == 0:
            specs.append({"request_id": f"x-{i:04d}", "timestamp": ts, "model": "other"})
    for spec in specs:
        make_log(acme, **spec)
    make_log(globex, request_id="m-globex", model="gpt-4o")
    client.force_login(alice)

    url, seen, pages = "/logs/?model=gpt-4o", [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        pages += 1
        seen += _ids(response)
        assert response.context["totals"].requests == PAGE_LIMIT * 2 + 25  # totals ignore the cursor
        url = _older_href(response)
        if url:
            assert "model=gpt-4o" in url and "cursor=" in url
    assert pages == 3
    assert len(seen) == len(set(seen)) == PAGE_LIMIT * 2 + 25
    assert all(request_id.startswith("m-") and request_id != "m-globex" for request_id in seen)
    # Walked newest first, ties broken by id (created in order).
    assert seen == [f"m-{i:04d}" for i in reversed(range(PAGE_LIMIT * 2 + 25))]
    # "Newest" drops the cursor but keeps the filters.
    assert 'href="?model=gpt-4o">« Newest' in response.content.decode()


@pytest.mark.django_db
def test_totals_equal_sums_computed_here(client, alice, acme_logs):
    client.force_login(alice)
    response = client.get("/logs/", {"model": ["gpt-4o", "gpt-4o-mini"]})
    rows = [s for s in SPECS if s["model"] in ("gpt-4o", "gpt-4o-mini")]
    totals = response.context["totals"]
    assert totals.requests == len(rows)
    assert totals.prompt_tokens == sum(s["prompt_tokens"] for s in rows)
    assert totals.completion_tokens == sum(s["completion_tokens"] for s in rows)
    assert totals.total_tokens == sum(s["prompt_tokens"] + s["completion_tokens"] for s in rows)
    expected_cost = sum(s["cost"] for s in rows if s["cost"] is not None)
    assert isinstance(totals.cost, Decimal) and totals.cost == expected_cost
    assert totals.errors == sum(1 for s in rows if s["status"] == "error")
    assert totals.unpriced == sum(1 for s in rows if s["cost"] is None)
    body = response.content.decode()
    assert f"${expected_cost:.6f}" in body  # the bar shows 6 decimals
    assert f"{totals.errors / len(rows) * 100:.1f}%" in body


@pytest.mark.django_db
def test_totals_past_the_cap_say_plus_and_skip_the_sums(client, alice, acme_logs, monkeypatch):
    monkeypatch.setattr(selectors, "TOTALS_CAP", 10)
    client.force_login(alice)
    response = client.get("/logs/")
    assert response.context["totals"].capped
    body = response.content.decode()
    assert '<span class="stat-value">10+</span>' in body
    assert "Narrow the time range or add a filter to see tokens, cost and error rate." in body
    assert len(response.context["rows"]) == len(SPECS)  # the page itself is not capped


@pytest.mark.django_db
def test_query_timeout_shows_its_message(client, alice, acme_logs, monkeypatch):
    def too_slow(**kwargs):
        raise selectors.QueryTimeout(selectors.QueryTimeout.message)

    monkeypatch.setattr(selectors, "log_page", too_slow)
    client.force_login(alice)
    response = client.get("/logs/", {"q": "timeout"})
    assert response.status_code == 200 and response.context["rows"] == []
    assert "The search took too long. Narrow the time range" in response.content.decode()


@pytest.mark.django_db
def test_rows_show_cost_unpriced_badge_and_key_names(client, alice, acme):
    make_log(acme, request_id="priced", cost=Decimal("0.000000150000"), api_key="team-a")
    make_log(acme, request_id="unpriced", cost=None, api_key="team-b")
    ApiKey.objects.create(
        account=acme, identifier="team-a", fingerprint="fp", display_name="Search team", first_seen=BASE, last_seen=BASE
    )
    client.force_login(alice)
    body = client.get("/logs/").content.decode()
    assert "$0.00000015<" in body
    assert '<span class="badge badge-muted">unpriced</span>' in body
    assert ">Search team</a>" in body
    # The key cell filters by the key, keeping other filters out of the way.
    assert 'href="?api_key=team-b"' in body


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_rows(client, alice, acme, django_assert_max_num_queries):
    client.force_login(alice)
    AccountModel.objects.create(account=acme, model="gpt-4o-mini", first_seen=BASE, last_seen=BASE)
    client.get("/logs/")  # the first page view stores the current account in the session
    counts = []
    for n_rows in (3, PAGE_LIMIT + 10):
        for i in range(n_rows - len(counts) * 3):
            make_log(acme, api_key=f"key-{i % 7}")
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/logs/", {"model": "gpt-4o-mini"})
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    # session, user, account, role, models, keys, page, totals (one statement), switcher;
    # on PostgreSQL the account's retention classes, and the page and the totals each add
    # SAVEPOINT, the statement-timeout settings and RELEASE.
    expected = 16 if connection.vendor == "postgresql" else 9
    assert counts[1] == expected
    with django_assert_max_num_queries(expected):
        client.get("/logs/", {"model": "gpt-4o-mini", "status": "success"})


# --- Detail ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_shows_every_field_and_the_error_block(client, alice, acme):
    make_log(
        acme,
        request_id="chatcmpl/abc 1",
        timestamp=datetime(2026, 11, 20, 23, 30, 5, 123456, tzinfo=UTC),
        model="gpt-4o",
        status="error",
        prompt_tokens=1234,
        completion_tokens=0,
        cached_tokens=1000,
        cost=Decimal("0.001234000000"),
        api_key="team-a",
        ip_address="203.0.113.7",
        user_agent="litellm/1.50",
        latency_ms=845,
        request_params={"temperature": 0.2, "max_tokens": 256},
        tags={"team": "search"},
        error_code="rate_limit",
        error_message="Rate limit exceeded for gpt-4o",
        error_details={"provider": "openai", "retry_after": 20},
    )
    client.force_login(alice)
    client.cookies["meterlog_tz"] = "Asia/Tokyo"  # UTC+9: the next day locally
    response = client.get("/logs/chatcmpl/abc%201/")
    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    assert "2026-11-21 08:30:05.123456" in body  # local
    assert "2026-11-20 23:30:05.123456" in body  # UTC
    for text in ("gpt-4o", "1,234", "1,000", "$0.001234", "team-a", "203.0.113.7", "litellm/1.50", "845 ms"):
        assert text in body
    assert '"max_tokens": 256,\n  "temperature": 0.2' in body
    assert "rate_limit" in body and "Rate limit exceeded for gpt-4o" in body
    assert '"retry_after": 20' in body
    assert "sent by the gateway" in body


@pytest.mark.django_db
def test_detail_names_the_price_that_priced_the_record(client, alice, acme):
    price = ModelPrice.objects.create(
        model="gpt-4o",
        match="prefix",
        input_per_mtok=Decimal("2.5"),
        output_per_mtok=Decimal("10"),
        cached_input_per_mtok=Decimal("1.25"),
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        source="genai-prices",
    )
    make_log(acme, request_id="by-price", model="gpt-4o-2024", cost=Decimal("0.00035"), price=price)
    make_log(acme, request_id="no-price", cost=None)
    client.force_login(alice)
    body = client.get("/logs/by-price/").content.decode()
    assert "<strong>gpt-4o*</strong>" in body and "(prefix)" in body
    assert "input $2.50" in body and "cached input $1.25" in body and "output $10.00" in body
    assert 'valid from <span class="nowrap">2026-01-01 00:00 UTC</span>' in body
    assert 'href="/pricing/?q=gpt-4o"' in body
    body = client.get("/logs/no-price/").content.decode()
    assert "unpriced" in body and "no price for this model was in force" in body


# --- Keys ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_keys_page_sums_the_last_30_days_in_one_query(client, alice, acme, globex):
    now = timezone.now()
    for identifier in ("team-a", "team-b", "team-c"):
        ApiKey.objects.create(
            account=acme, identifier=identifier, fingerprint=identifier, first_seen=now, last_seen=now
        )
    make_log(acme, api_key="team-a", timestamp=now - timedelta(days=1), cost=Decimal("0.5"))
    make_log(acme, api_key="team-a", timestamp=now - timedelta(days=2), cost=Decimal("0.25"), status="error")
    make_log(acme, api_key="team-a", timestamp=now - timedelta(days=3), cost=None)
    make_log(acme, api_key="team-a", timestamp=now - timedelta(days=40), cost=Decimal("100"))  # too old
    make_log(acme, api_key="team-b", timestamp=now - timedelta(hours=1), cost=Decimal("1"))
    make_log(globex, api_key="team-a", timestamp=now - timedelta(days=1), cost=Decimal("9"))  # other account
    client.force_login(alice)
    response = client.get("/keys/")
    usage = {key.identifier: key.usage for key in response.context["keys"]}
    assert usage["team-a"]["requests"] == 3 and usage["team-a"]["cost"] == Decimal("0.75")
    assert usage["team-a"]["errors"] == 1 and usage["team-a"]["unpriced"] == 1
    assert usage["team-b"]["requests"] == 1 and usage["team-b"]["cost"] == Decimal("1")
    assert usage["team-c"] is None
    assert 'href="/logs/?api_key=team-a&amp;range=30d"' in response.content.decode()

    # More keys, same number of queries.
    with CaptureQueriesContext(connection) as before:
        client.get("/keys/")
    for i in range(5):
        ApiKey.objects.create(account=acme, identifier=f"k{i}", fingerprint=f"k{i}", first_seen=now, last_seen=now)
        make_log(acme, api_key=f"k{i}", timestamp=now - timedelta(days=1))
    with CaptureQueriesContext(connection) as after:
        client.get("/keys/")
    assert len(after) == len(before)
    # The 30-day sums: one GROUP BY by key over the log (the sparklines read the rollups).
    grouped = [q["sql"] for q in after.captured_queries if '"logs_requestlog"."api_key" AS "api_key"' in q["sql"]]
    assert len(grouped) == 1


# --- Pricing ---------------------------------------------------------------------------


def _price(model, valid_from, inp, out, **extra):
    return ModelPrice.objects.create(
        model=model,
        input_per_mtok=Decimal(inp),
        output_per_mtok=Decimal(out),
        valid_from=valid_from,
        source=extra.pop("source", "genai-prices"),
        **extra,
    )


@pytest.mark.django_db
def test_pricing_shows_prices_in_force_overrides_and_history(client, alice, acme, globex):
    now = timezone.now()
    old = _price("gpt-4o", now - timedelta(days=400), "5", "15")
    current = _price("gpt-4o", now - timedelta(days=100), "2.5", "10")
    override = _price("gpt-4o", now - timedelta(days=10), "2", "8", account=acme, source="operator")
    _price("gpt-4o", now - timedelta(days=5), "1", "1", account=globex, source="operator")  # not acme's
    future = _price("gpt-4o", now + timedelta(days=10), "2.2", "9")
    claude = _price("claude-3-5", now - timedelta(days=50), "3", "15", match="prefix")
    _price("mistral-large", now - timedelta(days=50), "2", "6")
    AccountModel.objects.create(account=acme, model="gpt-4o", first_seen=now, last_seen=now)
    AccountModel.objects.create(account=acme, model="claude-3-5-sonnet-latest", first_seen=now, last_seen=now)
    AccountModel.objects.create(account=acme, model="unknown-model", first_seen=now, last_seen=now)

    client.force_login(alice)
    response = client.get("/pricing/")
    used = {item["model"]: item["group"] for item in response.context["used"]}
    assert used["gpt-4o"].current == override
    assert used["gpt-4o"].list_price == current
    assert used["gpt-4o"].history == [future, old]
    assert used["claude-3-5-sonnet-latest"].current == claude
    assert used["unknown-model"] is None
    groups = {(g.model, g.match): g for g in response.context["groups"]}
    assert set(groups) == {("gpt-4o", "exact"), ("claude-3-5", "prefix"), ("mistral-large", "exact")}
    body = response.content.decode()
    assert "your price" in body and "scheduled" in body and "$1.00" not in body  # globex's override

    response = client.get("/pricing/", {"q": "MISTRAL"})
    assert [g.model for g in response.context["groups"]] == ["mistral-large"]


@pytest.mark.django_db
def test_pricing_pages_through_a_long_list(client, alice):
    now = timezone.now()
    for i in range(120):
        _price(f"model-{i:03d}", now - timedelta(days=1), "1", "2")
    client.force_login(alice)
    page1 = client.get("/pricing/")
    page3 = client.get("/pricing/", {"page": 3})
    assert [g.model for g in page1.context["groups"]] == [f"model-{i:03d}" for i in range(50)]
    assert [g.model for g in page3.context["groups"]] == [f"model-{i:03d}" for i in range(100, 120)]
