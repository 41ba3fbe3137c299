"""/pricing/ (issue 17): the models used first, the provider filter, the list's start date
shown as such, and the owner's own price of a model, which ingest then uses for that
account only."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from console.models import ApiToken, AuditAction, AuditEvent
from logs.models import PRICE_FLOOR, AccountModel, ModelPrice, PriceSource, RequestLog
from logs.partitions import forget_known_partitions
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    forget_known_partitions()


def _list_price(model, *, provider="openai", valid_from=PRICE_FLOOR, inp="1", out="2", **extra):
    return ModelPrice.objects.create(
        model=model,
        provider=provider,
        input_per_mtok=Decimal(inp),
        output_per_mtok=Decimal(out),
        valid_from=valid_from,
        source=PriceSource.GENAI_PRICES,
        **extra,
    )


def _ingest(client, account, records):
    token = ApiToken.generate(account=account, scope="ingest")[1]
    response = client.post(
        "/api/v1/ingest",
        data=json.dumps(records).encode(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.content
    return response.json()


def _record(n, model, **fields):
    return {
        "request_id": f"req-{n}",
        "timestamp": "2026-11-20T12:00:00Z",
        "model": model,
        "status": "success",
        "prompt_tokens": 1_000_000,
        "completion_tokens": 500_000,
        **fields,
    }


def test_the_list_start_reads_since_the_price_list_began(client, alice):
    _list_price("gpt-4o")
    _list_price("gpt-4o-mini", valid_from=timezone.now() - timedelta(days=3))
    client.force_login(alice)
    body = client.get("/pricing/").content.decode()
    assert "since the price list began" in body
    assert "2000-01-01" not in body
    assert (timezone.now() - timedelta(days=3)).strftime("%Y-%m-%d") in body


def test_models_used_come_first_and_the_provider_filters_the_list(client, alice, acme):
    _list_price("gpt-4o", provider="openai")
    _list_price("claude-sonnet-4", provider="anthropic")
    _list_price("mistral-large", provider="mistral")
    now = timezone.now()
    AccountModel.objects.create(account=acme, model="claude-sonnet-4", first_seen=now, last_seen=now)
    client.force_login(alice)
    response = client.get("/pricing/")
    assert [item["model"] for item in response.context["used"]] == ["claude-sonnet-4"]
    assert response.context["providers"] == ["anthropic", "mistral", "openai"]
    body = response.content.decode()
    assert body.index('id="used"') < body.index("claude-sonnet-4") < body.index('id="all"')

    response = client.get("/pricing/", {"provider": "mistral"})
    assert [g.model for g in response.context["groups"]] == ["mistral-large"]
    assert '<option value="mistral" selected>' in response.content.decode()
    response = client.get("/pricing/", {"provider": "anthropic", "q": "gpt"})
    assert response.context["groups"] == []
    assert "No model matches “gpt” from anthropic." in response.content.decode()
    assert client.get("/pricing/", {"provider": "open\x00ai"}).status_code == 400


def test_an_owner_prices_a_custom_model_and_the_next_records_use_it(client, alice, acme, globex):
    # Before: the custom model is unpriced for both accounts.
    assert _ingest(client, acme, [_record(1, "ft:acme-model")])["accepted"] == 1
    assert RequestLog.objects.get(account=acme, request_id="req-1").cost is None

    client.force_login(alice)
    response = client.post(
        "/pricing/price/",
        {"model": "ft:acme-model", "input_per_mtok": "3", "output_per_mtok": "10", "cached_input_per_mtok": ""},
    )
    assert response.status_code == 302 and response["Location"] == "/pricing/"
    price = ModelPrice.objects.get(account=acme, model="ft:acme-model")
    assert (price.input_per_mtok, price.output_per_mtok, price.source) == (Decimal(3), Decimal(10), "account")
    assert price.valid_from == PRICE_FLOOR
    event = AuditEvent.objects.get(account=acme, action=AuditAction.PRICE_SET)
    assert event.username == "alice@acme.test"
    assert event.details == {
        "model": "ft:acme-model",
        "input": "3",
        "output": "10",
        "cached_input": None,
        "previous": None,
    }

    _ingest(client, acme, [_record(2, "ft:acme-model")])
    _ingest(client, globex, [_record(2, "ft:acme-model")])
    # 1M prompt x $3 + 0.5M completion x $10 = $8.
    record = RequestLog.objects.get(account=acme, request_id="req-2")
    assert (record.cost, record.price_id) == (Decimal("8.000000000000"), price.pk)
    other = RequestLog.objects.get(account=globex, request_id="req-2")
    assert (other.cost, other.price_id) == (None, None)
    # The record stored before keeps its (lack of) cost.
    assert RequestLog.objects.get(account=acme, request_id="req-1").cost is None

    # The page lists it as the account's price, with Edit and Remove.
    body = client.get("/pricing/").content.decode()
    assert "your price" in body and "?set=ft%3Aacme-model#your-price" in body and "Remove" in body


def test_an_owner_overrides_a_list_price_changes_it_and_removes_it(client, alice, acme):
    listed = _list_price("gpt-4o", inp="2.5", out="10")
    client.force_login(alice)
    client.post("/pricing/price/", {"model": "gpt-4o", "input_per_mtok": "2", "output_per_mtok": "8"})
    first = ModelPrice.objects.get(account=acme)
    _ingest(client, acme, [_record(1, "gpt-4o")])
    assert RequestLog.objects.get(request_id="req-1").cost == Decimal("6.000000000000")  # 2 + 0.5 x 8

    # The form is prefilled for an edit.
    response = client.get("/pricing/", {"set": "gpt-4o"})
    assert response.context["price_form"]["values"]["input_per_mtok"] == "2"
    assert 'value="8"' in response.content.decode()

    assert client.get("/pricing/", {"set": "gpt\x00"}).context["price_form"]["values"]["model"] == ""

    # A change is a new row from now on; the first stays for the records it priced.
    client.post("/pricing/price/", {"model": "gpt-4o", "input_per_mtok": "1", "output_per_mtok": "4"})
    rows = list(ModelPrice.objects.filter(account=acme).order_by("valid_from"))
    assert [r.input_per_mtok for r in rows] == [Decimal(2), Decimal(1)] and rows[0].pk == first.pk
    assert AuditEvent.objects.filter(action=AuditAction.PRICE_SET).latest("id").details["previous"]["input"] == "2"
    _ingest(client, acme, [_record(2, "gpt-4o", timestamp=timezone.now().isoformat())])
    assert RequestLog.objects.get(request_id="req-2").cost == Decimal("3.000000000000")  # 1 + 0.5 x 4
    # Saving the same values again writes nothing.
    client.post("/pricing/price/", {"model": "gpt-4o", "input_per_mtok": "1.0", "output_per_mtok": "4"})
    assert ModelPrice.objects.filter(account=acme).count() == 2
    assert AuditEvent.objects.filter(action=AuditAction.PRICE_SET).count() == 2

    response = client.post("/pricing/price/remove/", {"model": "gpt-4o"})
    assert response.status_code == 302
    assert not ModelPrice.objects.filter(account=acme).exists()
    assert ModelPrice.objects.filter(pk=listed.pk).exists()
    removed = AuditEvent.objects.get(action=AuditAction.PRICE_REMOVED)
    assert removed.details == {
        "model": "gpt-4o",
        "removed": {"input": "1", "output": "4", "cached_input": None},
        "rows": 2,
    }
    _ingest(client, acme, [_record(3, "gpt-4o")])
    assert RequestLog.objects.get(request_id="req-3").cost == Decimal("7.500000000000")  # the list price again
    assert client.post("/pricing/price/remove/", {"model": "gpt-4o"}).status_code == 404
    assert client.post("/pricing/price/remove/", {"model": "gpt\x00"}).status_code == 404


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"model": "", "input_per_mtok": "1", "output_per_mtok": "1"}, "model", "Name the model"),
        ({"model": "m", "input_per_mtok": "", "output_per_mtok": "1"}, "input_per_mtok", "Enter a price"),
        ({"model": "m", "input_per_mtok": "abc", "output_per_mtok": "1"}, "input_per_mtok", "is not a number"),
        ({"model": "m", "input_per_mtok": "-1", "output_per_mtok": "1"}, "input_per_mtok", "0 or more"),
        ({"model": "m", "input_per_mtok": "NaN", "output_per_mtok": "1"}, "input_per_mtok", "0 or more"),
        ({"model": "m", "input_per_mtok": "1", "output_per_mtok": "1e9"}, "output_per_mtok", "At most 1,000,000"),
        ({"model": "m", "input_per_mtok": "1", "output_per_mtok": "0.00000000001"}, "output_per_mtok", "decimal"),
        ({"model": "m\x00", "input_per_mtok": "1", "output_per_mtok": "1"}, "model", "control characters"),
        ({"model": "m", "provider": "p\x00", "input_per_mtok": "1", "output_per_mtok": "1"}, "provider", "control"),
        ({"model": "m", "provider": "p" * 65, "input_per_mtok": "1", "output_per_mtok": "1"}, "provider", "64"),
    ],
)
def test_a_bad_price_is_a_400_with_the_message_by_its_field(client, alice, acme, data, field, message):
    client.force_login(alice)
    response = client.post("/pricing/price/", data)
    assert response.status_code == 400
    errors = response.context["price_form"]["errors"]
    assert list(errors) == [field] and message in errors[field][0]
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not ModelPrice.objects.filter(account=acme).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.PRICE_SET).exists()


def test_only_owners_see_the_form_and_an_admin_is_refused(client, acme):
    admin = make_user("admin@acme.test", account=acme, role="admin")
    client.force_login(admin)
    response = client.get("/pricing/")
    assert response.context["price_form"] is None and 'id="your-price"' not in response.content.decode()
    response = client.post("/pricing/price/", {"model": "m", "input_per_mtok": "1", "output_per_mtok": "1"})
    assert response.status_code == 403
    assert not ModelPrice.objects.exists()


def test_an_owner_cannot_remove_another_accounts_price(client, alice, globex):
    theirs = ModelPrice.objects.create(
        model="shared-name", input_per_mtok=1, output_per_mtok=1, account=globex, valid_from=PRICE_FLOOR
    )
    client.force_login(alice)
    assert client.post("/pricing/price/remove/", {"model": "shared-name"}).status_code == 404
    assert ModelPrice.objects.filter(pk=theirs.pk).exists()
    # Alice's own price of the same name leaves globex's alone.
    client.post("/pricing/price/", {"model": "shared-name", "input_per_mtok": "5", "output_per_mtok": "5"})
    assert ModelPrice.objects.get(pk=theirs.pk).input_per_mtok == 1


def test_the_access_log_says_what_price_changed(client, alice, acme):
    client.force_login(alice)
    client.post("/pricing/price/", {"model": "ft:m", "input_per_mtok": "2", "output_per_mtok": "8"})
    client.post(
        "/pricing/price/",
        {"model": "ft:m", "input_per_mtok": "1", "output_per_mtok": "8", "cached_input_per_mtok": "0.5"},
    )
    client.post("/pricing/price/remove/", {"model": "ft:m"})
    lines = [e.detail_lines() for e in AuditEvent.objects.filter(account=acme).order_by("id")]
    assert lines == [
        ["ft:m: input $2, output $8 per 1M tokens"],
        ["ft:m: input $2 → $1, cached input – → $0.5, output $8 per 1M tokens"],
        ["ft:m: removed, was input $1, cached input $0.5, output $8 per 1M tokens"],
    ]
    page = client.get("/settings/access-log/").content.decode()
    assert "Account price set" in page and "Account price removed" in page
    assert "ft:m: input $2 → $1, cached input – → $0.5, output $8 per 1M tokens" in page
