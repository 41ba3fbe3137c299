"""The logs app in the Django admin: read-only logs, editable key names and prices."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from logs import partitions
from logs.admin_changelist import NewestRowsPaginator
from logs.models import AccountModel, ApiKey, ModelPrice, PriceSource, RequestLog
from logs.prices.sync import prices_sync
from tests.factories import make_log

BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _forget_known_partitions():
    # Partition DDL is rolled back with each test; the module-level cache must forget it too.
    partitions._known.clear()


@pytest.fixture
def logs(acme, globex):
    rows = [
        make_log(
            acme, request_id=f"acme-{i}", timestamp=BASE + timedelta(minutes=i), status="error" if i % 3 else "success"
        )
        for i in range(6)
    ]
    rows.append(make_log(globex, request_id="globex-1", timestamp=BASE + timedelta(hours=1)))
    return rows


def _changelist_ids(response) -> list[str]:
    return [row.request_id for row in response.context["cl"].result_list]


@pytest.mark.django_db
def test_request_log_changelist_lists_newest_first_across_accounts(admin_client, logs):
    response = admin_client.get("/admin/logs/requestlog/", {"window": "all"})
    assert response.status_code == 200
    assert _changelist_ids(response) == ["globex-1", "acme-5", "acme-4", "acme-3", "acme-2", "acme-1", "acme-0"]
    html = response.content.decode()
    assert "acme-3" in html and "Acme Corp" in html


@pytest.mark.django_db
def test_request_log_filter_and_exact_search(admin_client, logs):
    errors = admin_client.get("/admin/logs/requestlog/", {"window": "all", "status__exact": "error"})
    assert _changelist_ids(errors) == ["acme-5", "acme-4", "acme-2", "acme-1"]
    found = admin_client.get("/admin/logs/requestlog/", {"q": "acme-4"})
    assert _changelist_ids(found) == ["acme-4"]
    # Exact on purpose: a substring search would scan the whole table.
    assert _changelist_ids(admin_client.get("/admin/logs/requestlog/", {"q": "acme"})) == []
    assert _changelist_ids(admin_client.get("/admin/logs/requestlog/", {"q": "ACME-4"})) == []


@pytest.mark.django_db
def test_request_logs_are_read_only(admin_client, logs):
    row = logs[0]
    assert admin_client.get("/admin/logs/requestlog/add/").status_code == 403
    change_url = f"/admin/logs/requestlog/{row.pk}/change/"
    view = admin_client.get(change_url)
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert admin_client.post(change_url, {"model": "tampered"}).status_code == 403
    assert admin_client.get(f"/admin/logs/requestlog/{row.pk}/delete/").status_code == 403
    bulk = admin_client.post(
        "/admin/logs/requestlog/", {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    row.refresh_from_db()
    assert row.model == "gpt-4o-mini"
    assert RequestLog.objects.count() == 7


@pytest.mark.django_db
def test_request_log_changelist_does_not_count_the_whole_table(admin_client, logs, monkeypatch):
    monkeypatch.setattr(NewestRowsPaginator, "row_cap", 4)
    response = admin_client.get("/admin/logs/requestlog/", {"window": "all"})
    assert response.context["cl"].result_count == 4
    assert response.context["cl"].full_result_count is None  # show_full_result_count = False


@pytest.mark.django_db
def test_request_log_changelist_query_count_is_flat(admin_client, acme, django_assert_max_num_queries):
    now = timezone.now()
    for i in range(40):
        make_log(acme, timestamp=now - timedelta(minutes=i))
    # Session, user, the console's current account, the account choices, two capped counts
    # (24 h, then the whole window: at 40 rows a day, 3, 7 or 30 days cannot hold 10,000),
    # the page (account joined in), the session save (3); on PostgreSQL 3 more (the
    # statement timeout's savepoint and set_config).
    with django_assert_max_num_queries(13):
        response = admin_client.get("/admin/logs/requestlog/", {"window": "all"})
    assert len(response.context["cl"].result_list) == 40
    # The default window (24 h) needs one count, no narrower spans.
    with django_assert_max_num_queries(12):
        response = admin_client.get("/admin/logs/requestlog/")
    assert len(response.context["cl"].result_list) == 40


@pytest.mark.django_db
def test_api_key_display_name_is_editable_and_identity_is_not(admin_client, acme):
    now = timezone.now()
    key = ApiKey.objects.create(
        account=acme, identifier="sk-…a1b2", fingerprint="f" * 64, display_name="", first_seen=now, last_seen=now
    )
    assert admin_client.get("/admin/logs/apikey/add/").status_code == 403
    response = admin_client.post(
        f"/admin/logs/apikey/{key.pk}/change/",
        {"display_name": "Search team", "identifier": "changed", "fingerprint": "0" * 64},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.display_name, key.identifier, key.fingerprint) == ("Search team", "sk-…a1b2", "f" * 64)


def _price_form(row: ModelPrice, **changes) -> dict:
    data = {
        "model": row.model,
        "match": row.match,
        "input_per_mtok": str(row.input_per_mtok),
        "output_per_mtok": str(row.output_per_mtok),
        "cached_input_per_mtok": "" if row.cached_input_per_mtok is None else str(row.cached_input_per_mtok),
        "valid_from_0": row.valid_from.strftime("%Y-%m-%d"),
        "valid_from_1": row.valid_from.strftime("%H:%M:%S"),
        "account": row.account_id or "",
        "provider": row.provider,
    }
    return data | changes


@pytest.mark.django_db
def test_editing_a_synced_price_makes_it_the_operators_and_sync_leaves_it(admin_client):
    prices_sync(now=datetime(2026, 11, 1, tzinfo=UTC))
    (row,) = ModelPrice.objects.filter(model="gpt-4o-mini", source=PriceSource.GENAI_PRICES)

    response = admin_client.post(f"/admin/logs/modelprice/{row.pk}/change/", _price_form(row, input_per_mtok="0.12"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    row.refresh_from_db()
    assert (row.input_per_mtok, row.source) == (Decimal("0.12"), PriceSource.OPERATOR)

    result = prices_sync(now=datetime(2026, 11, 24, tzinfo=UTC))
    assert result.rows_written == 0
    assert result.operator_owned == 1
    assert list(ModelPrice.objects.filter(model="gpt-4o-mini").values_list("pk", flat=True)) == [row.pk]


@pytest.mark.django_db
def test_saving_a_synced_price_unchanged_keeps_its_source(admin_client):
    prices_sync(now=datetime(2026, 11, 1, tzinfo=UTC))
    (row,) = ModelPrice.objects.filter(model="gpt-4o-mini", source=PriceSource.GENAI_PRICES)
    response = admin_client.post(f"/admin/logs/modelprice/{row.pk}/change/", _price_form(row))
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.source == PriceSource.GENAI_PRICES


@pytest.mark.django_db
def test_a_price_added_in_the_admin_is_the_operators(admin_client, acme):
    response = admin_client.post(
        "/admin/logs/modelprice/add/",
        {
            "model": "acme-finetune-",
            "match": "prefix",
            "input_per_mtok": "0.3",
            "output_per_mtok": "1.2",
            "cached_input_per_mtok": "",
            "valid_from_0": "2026-11-01",
            "valid_from_1": "00:00:00",
            "account": acme.pk,
            "provider": "",
        },
    )
    assert response.status_code == 302
    row = ModelPrice.objects.get(model="acme-finetune-")
    assert (row.source, row.account_id, row.match) == (PriceSource.OPERATOR, acme.pk, "prefix")


@pytest.mark.django_db
def test_model_price_list_filters_by_source_match_and_account(admin_client, acme):
    ModelPrice.objects.create(model="a", input_per_mtok=1, output_per_mtok=1, source=PriceSource.GENAI_PRICES)
    ModelPrice.objects.create(model="b", match="prefix", input_per_mtok=1, output_per_mtok=1, account=acme)
    listing = admin_client.get("/admin/logs/modelprice/", {"source__exact": "operator"})
    assert [r.model for r in listing.context["cl"].result_list] == ["b"]
    listing = admin_client.get("/admin/logs/modelprice/", {"match__exact": "exact"})
    assert [r.model for r in listing.context["cl"].result_list] == ["a"]
    listing = admin_client.get("/admin/logs/modelprice/", {"account__id__exact": acme.pk})
    assert [r.model for r in listing.context["cl"].result_list] == ["b"]


@pytest.mark.django_db
def test_account_models_are_read_only(admin_client, acme):
    now = timezone.now()
    seen = AccountModel.objects.create(account=acme, model="gpt-4o", first_seen=now, last_seen=now)
    assert admin_client.get("/admin/logs/accountmodel/").status_code == 200
    assert admin_client.get("/admin/logs/accountmodel/add/").status_code == 403
    assert admin_client.post(f"/admin/logs/accountmodel/{seen.pk}/change/", {"model": "x"}).status_code == 403
    assert admin_client.get(f"/admin/logs/accountmodel/{seen.pk}/delete/").status_code == 403
