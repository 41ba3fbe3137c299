"""django-import-export in the admin: RequestLog export only, ApiKey / ModelPrice / Account
import and export, through the admin's real URLs and the two-step upload → confirm flow."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from console.models import Account
from logs.admin import RequestLogAdmin
from logs.exports.format import EXPORT_FIELDS
from logs.models import ApiKey, ModelPrice, PriceSource
from tests.factories import make_log

BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(username="root", email="root@operator.test", password="pw")


@pytest.fixture
def client(client, superuser):
    client.force_login(superuser)
    return client


def _format_index(form, name="csv") -> str:
    for value, label in form.fields["format"].choices:
        if label.lower() == name:
            return str(value)
    raise AssertionError(f"no {name} format in {form.fields['format'].choices}")


def _export_csv(client, url_name: str, query: str = "") -> list[dict]:
    url = reverse(url_name) + query
    form = client.get(url).context["form"]
    data = {"format": _format_index(form), "resource": "0"}
    data.update({name: "on" for name in form.fields if name not in ("format", "resource", "export_items")})
    response = client.post(url, data)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _upload(client, url_name: str, text: str):
    url = reverse(url_name)
    form = client.get(url).context["form"]
    upload = SimpleUploadedFile("import.csv", text.encode(), content_type="text/csv")
    return client.post(url, {"format": _format_index(form), "resource": "0", "import_file": upload})


def _import(client, url_name: str, process_name: str, text: str):
    """Upload (a dry run shown for review), then confirm; returns the confirm response."""
    preview = _upload(client, url_name, text)
    assert preview.status_code == 200
    result = preview.context["result"]
    assert not result.has_errors() and not result.has_validation_errors(), _errors(result)
    confirm = preview.context["confirm_form"]
    return client.post(reverse(process_name), confirm.initial, follow=True)


def _errors(result) -> list:
    rows = [(row.number, str(row.error)) for row in result.error_rows]
    rows += [(row.number, row.error_dict) for row in result.invalid_rows]
    return rows


# --- RequestLog: export only ---------------------------------------------------------------


@pytest.fixture
def logs(acme, globex):
    rows = [
        make_log(
            acme,
            request_id=f"acme-{i}",
            timestamp=BASE + timedelta(minutes=i),
            status="error" if i % 2 else "success",
            cost=Decimal("0.001250000000") * (i + 1),
            tags={"team": 'a, "b"'},
        )
        for i in range(4)
    ]
    rows.append(make_log(globex, request_id="globex-1", timestamp=BASE + timedelta(hours=1)))
    return rows


@pytest.mark.django_db
def test_request_log_export_is_the_filtered_changelist(client, logs):
    rows = _export_csv(client, "admin:logs_requestlog_export", "?window=all&status__exact=error")
    assert [row["request_id"] for row in rows] == ["acme-3", "acme-1"]
    assert list(rows[0]) == [*EXPORT_FIELDS, "account"]
    assert rows[0]["timestamp"] == "2026-11-20T12:03:00.000000Z"
    assert rows[0]["cost"] == "0.005"
    assert rows[1]["cost"] == "0.0025"
    assert rows[0]["tags"] == '{"team":"a, \\"b\\""}'
    assert rows[0]["account"] == "acme"
    assert rows[0]["status"] == "error"
    assert rows[0]["total_tokens"] == "120"


@pytest.mark.django_db
def test_request_log_export_unfiltered_and_searched(client, logs):
    everything = _export_csv(client, "admin:logs_requestlog_export", "?window=all")
    assert [row["request_id"] for row in everything] == ["globex-1", "acme-3", "acme-2", "acme-1", "acme-0"]
    assert [row["account"] for row in everything] == ["globex", "acme", "acme", "acme", "acme"]
    # A request-id search looks at any time unless a window is chosen.
    searched = _export_csv(client, "admin:logs_requestlog_export", "?q=acme-2")
    assert [row["request_id"] for row in searched] == ["acme-2"]
    assert _export_csv(client, "admin:logs_requestlog_export", "?q=acme-2&window=7d") == []
    globex = _export_csv(
        client, "admin:logs_requestlog_export", f"?window=all&account__id__exact={logs[-1].account_id}"
    )
    assert [row["request_id"] for row in globex] == ["globex-1"]


@pytest.mark.django_db
def test_request_log_export_without_a_window_is_the_default_page_last_24_hours(client, logs, acme):
    # The export is what the changelist shows, and the changelist shows the last 24 hours.
    make_log(acme, request_id="acme-recent", timestamp=timezone.now() - timedelta(hours=2))
    rows = _export_csv(client, "admin:logs_requestlog_export")
    assert [row["request_id"] for row in rows] == ["acme-recent"]


@pytest.mark.django_db
def test_request_log_export_over_the_cap_is_refused(client, logs, monkeypatch):
    monkeypatch.setattr(RequestLogAdmin, "EXPORT_ROW_CAP", 3)
    url = reverse("admin:logs_requestlog_export") + "?window=all"
    form = client.get(url).context["form"]
    response = client.post(url, {"format": _format_index(form), "resource": "0"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "more than 3 rows" in html and "/logs/export/" in html and "/api/v1/export" in html
    # Within the cap it exports.
    assert len(_export_csv(client, "admin:logs_requestlog_export", "?window=all&status__exact=error")) == 2


@pytest.mark.django_db
def test_request_log_has_no_import(client, logs):
    with pytest.raises(NoReverseMatch):
        reverse("admin:logs_requestlog_import")
    response = client.get("/admin/logs/requestlog/import/")
    assert response.status_code in (302, 404)  # the admin's catch-all view: not an import page
    assert "form" not in (response.context or {})
    changelist = client.get(reverse("admin:logs_requestlog_changelist")).content.decode()
    assert reverse("admin:logs_requestlog_export") in changelist
    assert "import_link" not in changelist


# --- ModelPrice ------------------------------------------------------------------------------

PRICES_CSV = (
    "model,match,provider,input_per_mtok,output_per_mtok,cached_input_per_mtok,valid_from,account,source\r\n"
    "acme-llm,exact,acme-ai,0.1234567891,2.5,,2026-11-01T00:00:00Z,,genai-prices\r\n"
    "acme-llm-,prefix,acme-ai,1,3.0000000001,0.5,2026-11-01T00:00:00Z,globex,\r\n"
)


@pytest.mark.django_db
def test_model_price_import_creates_operator_rows_once(client, globex):
    before = ModelPrice.objects.count()
    _import(client, "admin:logs_modelprice_import", "admin:logs_modelprice_process_import", PRICES_CSV)
    assert ModelPrice.objects.count() == before + 2
    listed = ModelPrice.objects.get(model="acme-llm", account=None)
    assert listed.match == "exact"
    assert listed.input_per_mtok == Decimal("0.1234567891")
    assert listed.output_per_mtok == Decimal("2.5")
    assert listed.cached_input_per_mtok is None
    assert listed.valid_from == datetime(2026, 11, 1, tzinfo=UTC)
    assert listed.source == PriceSource.OPERATOR  # the file cannot claim genai-prices
    override = ModelPrice.objects.get(model="acme-llm-", account=globex)
    assert override.match == "prefix"
    assert override.output_per_mtok == Decimal("3.0000000001")
    assert override.cached_input_per_mtok == Decimal("0.5")
    assert override.source == PriceSource.OPERATOR

    preview = _upload(client, "admin:logs_modelprice_import", PRICES_CSV)
    assert preview.context["result"].totals["skip"] == 2
    _import(client, "admin:logs_modelprice_import", "admin:logs_modelprice_process_import", PRICES_CSV)
    assert ModelPrice.objects.count() == before + 2


@pytest.mark.django_db
def test_model_price_export_round_trips_exact_decimals(client, globex):
    ModelPrice.objects.create(
        model="acme-llm",
        input_per_mtok=Decimal("0.0000000001"),
        output_per_mtok=Decimal("15"),
        valid_from=datetime(2026, 10, 1, tzinfo=UTC),
        account=globex,
        source=PriceSource.GENAI_PRICES,
    )
    rows = [row for row in _export_csv(client, "admin:logs_modelprice_export") if row["model"] == "acme-llm"]
    assert rows == [
        {
            "model": "acme-llm",
            "match": "exact",
            "provider": "",
            "input_per_mtok": "0.0000000001",
            "output_per_mtok": "15.0000000000",
            "cached_input_per_mtok": "",
            "valid_from": "2026-10-01T00:00:00.000000Z",
            "account": "globex",
            "source": "genai-prices",
        }
    ]


@pytest.mark.django_db
def test_model_price_bad_rows_are_reported_and_nothing_is_written(client, globex):
    before = ModelPrice.objects.count()
    text = (
        "model,match,provider,input_per_mtok,output_per_mtok,cached_input_per_mtok,valid_from,account\r\n"
        "good-llm,exact,,1,2,,2026-11-01T00:00:00Z,\r\n"
        "neg-llm,exact,,-1,2,,2026-11-01T00:00:00Z,\r\n"
        "bad-match,fuzzy,,1,2,,2026-11-01T00:00:00Z,\r\n"
        "long-llm,exact,,0.00000000001,2,,2026-11-01T00:00:00Z,\r\n"
        "nozone-llm,exact,,1,2,,2026-11-01T00:00:00,\r\n"
    )
    preview = _upload(client, "admin:logs_modelprice_import", text)
    result = preview.context["result"]
    invalid = {row.number: row.error_dict for row in result.invalid_rows}
    assert sorted(invalid) == [2, 3, 4]
    assert "input_per_mtok" in invalid[2] and ">= 0" in str(invalid[2])
    assert "match" in invalid[3]
    assert "10 decimal places" in str(invalid[4])
    # valid_from is part of the row's identity, so it is read while looking the row up: an
    # error there is a row error rather than a field error.
    assert [(row.number, "no time zone" in str(row.errors[0].error)) for row in result.error_rows] == [(5, True)]
    assert "confirm_form" not in preview.context
    assert ModelPrice.objects.count() == before
    assert not ModelPrice.objects.filter(model="good-llm").exists()


# --- Account -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_account_export_import_round_trip(client, acme, globex):
    Account.objects.filter(pk=globex.pk).update(retention_days_override=45, timezone="Europe/Berlin", privacy_mode=True)
    rows = {row["slug"]: row for row in _export_csv(client, "admin:console_account_export")}
    assert rows["globex"] == {
        "slug": "globex",
        "name": "Globex",
        "tier": "professional",
        "retention_days_override": "45",
        "timezone": "Europe/Berlin",
        "privacy_mode": "1",
    }
    assert rows["acme"]["retention_days_override"] == ""

    # Re-importing the export changes nothing; an edited and a new row update and create.
    header = "slug,name,tier,retention_days_override,timezone,privacy_mode\r\n"
    exported = header + "".join(
        ",".join(row[name] for name in ("slug", "name", "tier", "retention_days_override", "timezone", "privacy_mode"))
        + "\r\n"
        for row in rows.values()
    )
    assert _upload(client, "admin:console_account_import", exported).context["result"].totals["skip"] == 2
    text = header + "acme,Acme Inc,enterprise,,America/New_York,0\r\ninitech,Initech,standard,7,UTC,1\r\n"
    _import(client, "admin:console_account_import", "admin:console_account_process_import", text)
    acme.refresh_from_db()
    assert (acme.name, acme.tier, acme.timezone, acme.retention_days) == (
        "Acme Inc",
        "enterprise",
        "America/New_York",
        365,
    )
    initech = Account.objects.get(slug="initech")
    assert (initech.name, initech.retention_days, initech.privacy_mode) == ("Initech", 7, True)
    assert Account.objects.count() == 3


@pytest.mark.django_db
def test_account_import_rejects_bad_tier_and_zone(client, acme):
    text = (
        "slug,name,tier,retention_days_override,timezone,privacy_mode\r\n"
        "acme,Acme,platinum,,UTC,0\r\n"
        "newco,Newco,standard,,Mars/Olympus,0\r\n"
    )
    result = _upload(client, "admin:console_account_import", text).context["result"]
    invalid = {row.number: row.error_dict for row in result.invalid_rows}
    assert "tier" in invalid[1]
    assert "timezone" in invalid[2]
    acme.refresh_from_db()
    assert acme.tier == "standard"
    assert not Account.objects.filter(slug="newco").exists()


# --- ApiKey --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_key_import_updates_display_name_only(client, acme, globex):
    key = ApiKey.objects.create(
        account=acme, identifier="team-a", fingerprint="f" * 64, first_seen=BASE, last_seen=BASE, display_name=""
    )
    rows = _export_csv(client, "admin:logs_apikey_export")
    assert rows == [
        {
            "account": "acme",
            "identifier": "team-a",
            "display_name": "",
            "fingerprint": "f" * 64,
            "first_seen": "2026-11-20T12:00:00.000000Z",
            "last_seen": "2026-11-20T12:00:00.000000Z",
        }
    ]
    text = "account,identifier,display_name,fingerprint\r\nacme,team-a,Team A,ignored\r\n"
    # The fingerprint column, when given, must match: "ignored" picks no key.
    result = _upload(client, "admin:logs_apikey_import", text).context["result"]
    assert [row.number for row in result.invalid_rows] == [1]

    text = "account,identifier,display_name\r\nacme,team-a,Team A\r\n"
    _import(client, "admin:logs_apikey_import", "admin:logs_apikey_process_import", text)
    key.refresh_from_db()
    assert (key.display_name, key.fingerprint, key.first_seen) == ("Team A", "f" * 64, BASE)


@pytest.mark.django_db
def test_api_key_import_refuses_new_keys_and_other_accounts(client, acme, globex):
    ApiKey.objects.create(account=acme, identifier="team-a", fingerprint="a" * 64, first_seen=BASE, last_seen=BASE)
    text = (
        "account,identifier,display_name\r\n"
        "acme,team-new,New\r\n"  # no such key: ingest creates keys, not imports
        "globex,team-a,Stolen\r\n"  # the key exists, but in another account
        "nope,team-a,X\r\n"  # unknown slug
    )
    preview = _upload(client, "admin:logs_apikey_import", text)
    result = preview.context["result"]
    invalid = {row.number: row.error_dict for row in result.invalid_rows}
    assert sorted(invalid) == [1, 2, 3]
    assert "no such key" in str(invalid[1]) and "no such key" in str(invalid[2])
    assert "account slug" in str(invalid[3])
    assert "confirm_form" not in preview.context
    assert ApiKey.objects.count() == 1
    assert ApiKey.objects.get().display_name == ""
    assert not ApiKey.objects.filter(account=globex).exists()


# --- Access --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_non_staff_is_sent_to_the_admin_login(acme, alice):
    from django.test import Client

    client = Client()
    client.force_login(alice)
    for name in (
        "admin:logs_requestlog_export",
        "admin:logs_modelprice_import",
        "admin:logs_modelprice_export",
        "admin:logs_apikey_import",
        "admin:console_account_import",
        "admin:console_account_export",
    ):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_staff_needs_the_model_permissions(olivia):
    from django.contrib.auth.models import Permission
    from django.test import Client

    client = Client()
    client.force_login(olivia)
    assert client.get(reverse("admin:logs_modelprice_export")).status_code == 403
    assert client.get(reverse("admin:logs_modelprice_import")).status_code == 403
    olivia.user_permissions.add(Permission.objects.get(codename="view_modelprice"))
    assert client.get(reverse("admin:logs_modelprice_export")).status_code == 200
    assert client.get(reverse("admin:logs_modelprice_import")).status_code == 403
    olivia.user_permissions.add(Permission.objects.get(codename="change_modelprice"))
    assert client.get(reverse("admin:logs_modelprice_import")).status_code == 403  # may create: needs add
    olivia.user_permissions.add(Permission.objects.get(codename="add_modelprice"))
    assert client.get(reverse("admin:logs_modelprice_import")).status_code == 200
