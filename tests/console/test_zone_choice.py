"""The topbar's "Times in" switch (console.zones): one zone for every page, remembered."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from console.models import ViewerPreference
from logs.ingest.services import ingest_records


def _request_at(account, moment):
    record = {"request_id": "req-zone", "timestamp": moment.isoformat(), "model": "gpt-4o", "status": "success",
              "prompt_tokens": 10, "completion_tokens": 5, "cost": "0.000482400000", "api_key": "k1"}  # fmt: skip
    assert ingest_records(account=account, records=[record]).accepted == 1


@pytest.fixture
def moment(acme):
    """A request two days ago at hh:38:05 UTC; the account reports in Europe/Berlin."""
    acme.timezone = "Europe/Berlin"
    acme.save()
    at = (timezone.now() - timedelta(days=2)).replace(minute=38, second=5, microsecond=0)
    _request_at(acme, at)
    return at


def _log_time(client) -> str:
    body = client.get("/logs/").content.decode()
    return re.search(r"<time datetime=[^>]*>([^<]+)</time>", body).group(1)


def _analytics_time(client) -> str:
    # The cost tab's table of the most expensive requests shows the request's time.
    body = client.get("/analytics/", {"tab": "cost", "range": "7d"}).content.decode()
    table = body[body.index('data-table="top_requests"') :]
    return re.search(r"<td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)</td>", table).group(1)


def _local(moment, zone) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.django_db
def test_logs_and_analytics_show_a_request_at_the_same_time_in_either_zone(client, alice, moment):
    client.force_login(alice)
    client.cookies["meterlog_tz"] = "Asia%2FTokyo"  # as timezone.js writes it
    tokyo, berlin = _local(moment, "Asia/Tokyo"), _local(moment, "Europe/Berlin")
    # The default is "my zone": the browser's.
    assert (_log_time(client), _analytics_time(client)) == (tokyo, tokyo)
    body = client.get("/logs/").content.decode()
    assert "<strong data-active-zone>Asia/Tokyo</strong>" in body
    response = client.post("/zone/", {"choice": "account", "next": "/analytics/?tab=cost"})
    assert (response.status_code, response["Location"]) == (302, "/analytics/?tab=cost")
    assert (_log_time(client), _analytics_time(client)) == (berlin, berlin)
    assert "<strong data-active-zone>Europe/Berlin</strong>" in client.get("/").content.decode()


@pytest.mark.django_db
def test_analytics_days_follow_the_chosen_zone(client, alice, acme):
    """23:30 UTC is the next day in Tokyo: the cost-by-day CSV puts it there."""
    acme.timezone = "UTC"
    acme.save()
    day = (timezone.now() - timedelta(days=3)).date()
    at = datetime(day.year, day.month, day.day, 23, 30, tzinfo=UTC)
    _request_at(acme, at)
    client.force_login(alice)
    client.cookies["meterlog_tz"] = "Asia/Tokyo"
    params = {"tab": "cost", "range": "custom", "start": day.isoformat(),
              "end": (day + timedelta(days=1)).isoformat(), "chart": "cost_by_day", "format": "csv"}  # fmt: skip
    tokyo = client.get("/analytics/", params).content.decode().splitlines()
    assert tokyo[1:] == [f"{day}T00:00:00+09:00,0.00,0,0", f"{day + timedelta(days=1)}T00:00:00+09:00,0.0004824,1,0"]
    client.post("/zone/", {"choice": "account"})
    utc = client.get("/analytics/", params).content.decode().splitlines()
    assert utc[1:] == [f"{day}T00:00:00+00:00,0.0004824,1,0", f"{day + timedelta(days=1)}T00:00:00+00:00,0.00,0,0"]


@pytest.mark.django_db
def test_the_choice_is_remembered_across_sessions(client, alice, acme):
    acme.timezone = "Europe/Berlin"
    acme.save()
    client.force_login(alice)
    client.cookies["meterlog_tz"] = "Asia/Tokyo"
    assert client.post("/zone/", {"choice": "account"}).status_code == 302
    assert ViewerPreference.objects.get(user=alice).zone_choice == "account"
    client.logout()
    client.force_login(alice)
    client.cookies["meterlog_tz"] = "Asia/Tokyo"
    assert "<strong data-active-zone>Europe/Berlin</strong>" in client.get("/logs/").content.decode()


@pytest.mark.django_db
def test_my_zone_before_the_browser_told_it_is_the_accounts(client, alice, acme):
    acme.timezone = "America/New_York"
    acme.save()
    client.force_login(alice)
    body = client.get("/logs/").content.decode()
    assert "<strong data-active-zone>America/New_York</strong>" in body


@pytest.mark.django_db
def test_bad_choice_and_foreign_next(client, alice):
    client.force_login(alice)
    response = client.post("/zone/", {"choice": "mars"})
    assert response.status_code == 400 and b"Pick the account" in response.content
    response = client.post("/zone/", {"choice": "mine", "next": "https://evil.test/"})
    assert (response.status_code, response["Location"]) == (302, "/")
    assert client.get("/zone/").status_code == 405
