"""/keys/ (issue 17): a table sorted by ?sort=, a 30-day sparkline of each key's daily
requests read from the rollups (analytics registers the reader: logs does not import it),
and the identifier shown under the name only when they differ."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.rollups import rebuild
from logs import key_views
from logs.models import ApiKey
from tests.factories import make_log

pytestmark = pytest.mark.django_db


def _key(account, identifier, display_name="", *, last_seen=None):
    now = timezone.now()
    return ApiKey.objects.create(
        account=account,
        identifier=identifier,
        display_name=display_name,
        fingerprint=f"{account.slug}-{identifier}",
        first_seen=now - timedelta(days=60),
        last_seen=last_seen or now,
    )


@pytest.fixture
def keys(acme, globex):
    now = timezone.now()
    _key(acme, "team-a", "Search team", last_seen=now - timedelta(days=2))
    _key(acme, "team-b", "team-b", last_seen=now - timedelta(hours=1))  # named as its identifier
    _key(acme, "team-c", last_seen=now - timedelta(days=20))
    # Requests on known local days (acme's zone is UTC): today, 3 and 29 days ago, and one too old.
    today = now.replace(hour=0, minute=5, second=0, microsecond=0)
    for days_ago, count in ((0, 2), (3, 4), (29, 1), (30, 7)):
        for _ in range(count):
            make_log(acme, api_key="team-a", timestamp=today - timedelta(days=days_ago), cost=Decimal("0.1"))
    for _ in range(5):
        make_log(acme, api_key="team-b", timestamp=today - timedelta(days=1), status="error")
    for _ in range(9):
        make_log(globex, api_key="team-a", timestamp=today - timedelta(days=3))  # another account
    for account in (acme, globex):
        rebuild(account, (today - timedelta(days=40)).date(), today.date())
    return today


def test_each_key_has_30_days_of_daily_requests_from_the_rollups(client, alice, keys):
    client.force_login(alice)
    response = client.get("/keys/")
    spark = {key.identifier: key.spark for key in response.context["keys"]}
    expected_a = [0] * 30
    expected_a[29], expected_a[26], expected_a[0] = 2, 4, 1
    assert spark["team-a"]["series"] == expected_a
    assert spark["team-a"]["total"] == 7 and spark["team-a"]["peak"] == 4
    expected_b = [0] * 30
    expected_b[28] = 5
    assert spark["team-b"]["series"] == expected_b
    assert spark["team-c"]["series"] == [0] * 30
    body = response.content.decode()
    assert body.count('<svg class="sparkline"') == 3
    assert "7 requests in 30 days, at most 4 a day" in body
    # The peak day is drawn at the top of the box, a day without requests at the bottom.
    points = spark["team-a"]["points"].split()
    assert points[26] == f"{1 + 26 * (118 / 29):.1f},1.0" and points[1].endswith(",23.0")


def test_without_the_analytics_reader_the_column_is_left_out(client, alice, keys, monkeypatch):
    monkeypatch.setattr(key_views, "_key_days", [])
    client.force_login(alice)
    response = client.get("/keys/")
    assert response.status_code == 200 and "sparkline" not in response.content.decode()
    assert {key.identifier: key.usage["requests"] for key in response.context["keys"] if key.usage} == {
        "team-a": 7,
        "team-b": 5,
    }


def test_the_identifier_shows_only_when_it_differs_from_the_name(client, alice, keys):
    client.force_login(alice)
    body = client.get("/keys/").content.decode()
    assert '>Search team</a>\n          <div class="mono small muted">team-a</div>' in body
    assert '<div class="mono small muted">team-b</div>' not in body
    assert '<div class="mono small muted">team-c</div>' not in body
    assert ">team-b</a>" in body and ">team-c</a>" in body


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("", ["team-b", "team-a", "team-c"]),  # last seen, newest first
        ("last_seen", ["team-b", "team-a", "team-c"]),
        ("-last_seen", ["team-c", "team-a", "team-b"]),
        ("name", ["team-a", "team-b", "team-c"]),  # "Search team" < "team-b"
        ("-name", ["team-c", "team-b", "team-a"]),
        ("requests", ["team-a", "team-b", "team-c"]),
        ("-requests", ["team-c", "team-b", "team-a"]),
        ("errors", ["team-b", "team-a", "team-c"]),
        ("cost", ["team-a", "team-b", "team-c"]),
        ("bogus", ["team-b", "team-a", "team-c"]),
    ],
)
def test_the_table_sorts_by_each_column(client, alice, keys, sort, order):
    client.force_login(alice)
    response = client.get("/keys/", {"sort": sort})
    assert [key.identifier for key in response.context["keys"]] == order


def test_the_current_column_links_to_the_other_direction(client, alice, keys):
    client.force_login(alice)
    body = client.get("/keys/", {"sort": "requests"}).content.decode()
    assert (
        '<th class="num" aria-sort="descending"><a class="sort" href="?sort=-requests">Requests (30 d) ↓</a></th>'
        in body
    )
    assert '<a class="sort" href="?sort=name">Key</a>' in body
    body = client.get("/keys/", {"sort": "-requests"}).content.decode()
    assert 'aria-sort="ascending"><a class="sort" href="?sort=requests">Requests (30 d) ↑</a>' in body
