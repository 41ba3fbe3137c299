"""The retention pages (issue 15): each account sees its period, what it means, the time of
its oldest kept log in the viewer's zone and its last purge, and nothing of another
account's; operators see every account's period and the recent purge runs. SQLite and
PostgreSQL; on PostgreSQL the oldest-log read is an index probe per partition (its plan)."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from logs.gate import request_logs
from logs.ingest.services import ingest_records
from logs.retention import selectors
from logs.retention.services import purge_expired_logs
from tests.factories import make_account, make_log, make_user

TOKYO = ZoneInfo("Asia/Tokyo")

# slug -> (tier, override, the label the pages show)
ACCOUNTS = {
    "std": ("standard", None, "30 days (standard)"),
    "pro": ("professional", None, "90 days (professional)"),
    "ent": ("enterprise", None, "365 days (enterprise)"),
    "cust": ("professional", 180, "180 days (custom)"),
}


def rec(request_id: str, ts: datetime) -> dict:
    return {
        "request_id": request_id,
        "timestamp": ts.isoformat(),
        "model": "gpt-4o-mini",
        "status": "success",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": "0.000027",
    }


def tokyo_client(client, user):
    client.force_login(user)
    # The zone the viewer's browser reports (static/js/timezone.js writes this cookie).
    client.cookies["meterlog_tz"] = "Asia%2FTokyo"
    return client


def local(ts: datetime) -> str:
    return ts.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S")


def section(body: str, element_id: str) -> str:
    """The text of the element with this id (up to its closing tag of the same name)."""
    match = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', body, re.S)
    assert match, element_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match[2])).strip()


@pytest.fixture
def four_accounts(db):
    """Four accounts side by side, each with an owner and rows 3 and 1 days old; the oldest
    of each a different number of minutes past the day, so each account's time is its own."""
    now = timezone.now().replace(microsecond=0)
    made = {}
    for i, (slug, (tier, override, _)) in enumerate(ACCOUNTS.items()):
        account = make_account(slug, tier=tier, retention_days_override=override)
        user = make_user(f"owner@{slug}.test", account=account, role="owner")
        oldest = now - timedelta(days=3, minutes=7 * (i + 1))
        records = [rec(f"{slug}-old", oldest), rec(f"{slug}-new", now - timedelta(days=1))]
        assert ingest_records(account=account, records=records).accepted == 2
        made[slug] = (account, user, oldest)
    return made


@pytest.mark.django_db
def test_each_account_sees_its_period_and_its_oldest_log_in_local_time(client, four_accounts):
    for slug, (_, _, label) in ACCOUNTS.items():
        account, user, oldest = four_accounts[slug]
        tokyo_client(client, user)
        response = client.get("/retention/")
        assert response.status_code == 200
        body = response.content.decode()
        assert section(body, "retention-period") == label
        meaning = section(body, "retention-meaning")
        assert (
            f"Logs older than {account.retention_days} days are deleted automatically, once a day at 02:15 UTC"
            in meaning
        )
        assert "keep counting deleted days for 25 months" in meaning
        assert "Nobody deletes logs by hand" in meaning and "goes through the operator" in meaning
        kept = section(body, "oldest-kept-log")
        assert kept.startswith(f"{local(oldest)} JST 3 days ago"), kept
        assert f'datetime="{oldest.astimezone(UTC).isoformat()}"' in body
        assert "past the period" not in kept
        assert section(body, "last-purge") == "No purge has run for this account yet."
        # Nothing of the three other accounts: neither their oldest time nor their name.
        for other, (other_account, _, other_oldest) in four_accounts.items():
            if other != slug:
                assert local(other_oldest) not in body
                assert other_oldest.astimezone(UTC).isoformat() not in body
                # As a word: a random CSRF token may hold a short name such as "Pro".
                assert not re.search(rf"\b{re.escape(other_account.name)}\b", body)

        settings_page = client.get("/settings/").content.decode()
        assert section(settings_page, "settings-retention").startswith(label)
        assert 'href="/retention/"' in settings_page
        # The log list names the period (from the account: no query) and links here.
        logs_page = client.get("/logs/").content.decode()
        assert f"Kept {account.retention_days} days" in section(logs_page, "retention-link")


@pytest.mark.django_db
def test_custom_period_names_the_tier_default(client, four_accounts):
    _, user, _ = four_accounts["cust"]
    body = tokyo_client(client, user).get("/retention/").content.decode()
    assert "custom period set by the operator; the professional tier's default is 90 days" in body


@pytest.mark.django_db
def test_last_purge_shows_this_accounts_count_and_an_expired_oldest_log(client, acme, globex, alice, bob):
    now = timezone.now().replace(microsecond=0)
    # acme (standard, 30 days): 1 row past its period; globex (professional, 90 days): 3.
    acme_records = [rec("acme-old", now - timedelta(days=40)), rec("acme-kept", now - timedelta(days=29))]
    globex_records = [rec(f"globex-old-{i}", now - timedelta(days=100, hours=i)) for i in range(3)]
    globex_records.append(rec("globex-kept", now - timedelta(days=89)))
    assert ingest_records(account=acme, records=acme_records).accepted == 2
    assert ingest_records(account=globex, records=globex_records).accepted == 4

    # Before any purge the oldest row is past the period: the page says the purge will take it.
    body = tokyo_client(client, alice).get("/retention/").content.decode()
    kept = section(body, "oldest-kept-log")
    assert kept.startswith(local(now - timedelta(days=40))) and "past the period" in kept

    run = purge_expired_logs(now=now)
    assert run.deleted == 4

    body = tokyo_client(client, alice).get("/retention/").content.decode()
    kept = section(body, "oldest-kept-log")
    assert kept.startswith(f"{local(now - timedelta(days=29))} JST 29 days ago") and "past the period" not in kept
    last = section(body, "last-purge")
    assert last.startswith(now.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M JST")), last
    assert "1 row deleted" in last and "30-day period" in last
    assert (now - timedelta(days=30)).astimezone(TOKYO).strftime("%Y-%m-%d %H:%M") in last
    assert local(now - timedelta(days=89)) not in body  # globex's oldest kept row

    body = tokyo_client(client, bob).get("/retention/").content.decode()
    assert section(body, "last-purge-rows") == "3"
    assert section(body, "oldest-kept-log").startswith(local(now - timedelta(days=89)))

    # A dry run and a run of another account only are not this account's last purge.
    purge_expired_logs(now=now + timedelta(hours=1), dry_run=True)
    purge_expired_logs(now=now + timedelta(hours=2), slug="globex")
    body = tokyo_client(client, alice).get("/retention/").content.decode()
    assert section(body, "last-purge").startswith(now.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M JST"))

    # Runs name the account by id: a new slug keeps its last purge.
    acme.slug = "acme-renamed"
    acme.save()
    body = tokyo_client(client, alice).get("/retention/").content.decode()
    assert section(body, "last-purge").startswith(now.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M JST"))


@pytest.mark.django_db
def test_every_member_may_read_it_and_anonymous_users_log_in(client, acme, alice, charlie):
    make_log(acme, timestamp=timezone.now() - timedelta(days=2))
    client.force_login(charlie)  # a viewer
    assert client.get("/retention/").status_code == 200
    client.logout()
    response = client.get("/retention/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_no_logs_yet(client, alice):
    body = tokyo_client(client, alice).get("/retention/").content.decode()
    assert section(body, "oldest-kept-log") == "No logs stored."


# --- Operators ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_operator_page_lists_every_account_and_the_purge_runs(client, four_accounts, olivia):
    now = timezone.now().replace(microsecond=0)
    std, _, _ = four_accounts["std"]
    # Two rows of std past its 30 days; the others keep everything.
    assert ingest_records(account=std, records=[rec(f"std-gone-{i}", now - timedelta(days=45 + i)) for i in range(2)])
    dry = purge_expired_logs(now=now - timedelta(minutes=10), dry_run=True)
    real = purge_expired_logs(now=now)
    assert real.deleted == 2 and dry.deleted == 0

    client.force_login(olivia)
    response = client.get("/operator/retention/")
    assert response.status_code == 200
    body = response.content.decode()
    rows = re.findall(r'<tr data-account="([^"]+)">(.*?)</tr>', body, re.S)
    assert [slug for slug, _ in rows] == sorted(ACCOUNTS)
    cells = {
        slug: [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]
        for slug, html in rows
    }
    assert cells["std"][1:5] == ["Standard", "30 days", "none", "30 days (standard)"]
    assert cells["ent"][1:5] == ["Enterprise", "365 days", "none", "365 days (enterprise)"]
    assert cells["cust"][1:5] == ["Professional", "90 days", "180 days", "180 days (custom)"]
    assert cells["std"][6] == "2" and cells["pro"][6] == "0"
    std.slug = "std-renamed"  # runs name the account by id: a new slug keeps its last purge
    std.save()
    renamed = client.get("/operator/retention/").content.decode()
    row = re.search(r'<tr data-account="std-renamed">(.*?)</tr>', renamed, re.S).group(1)
    assert [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)][6] == "2"

    runs = re.findall(r'<tr class="row-top" data-run="(\d+)">', body)
    assert runs == [str(real.pk), str(dry.pk)]  # newest first
    real_row = body[body.index(f'data-run="{real.pk}"') : body.index(f'data-run="{dry.pk}"')]
    assert "Done" in real_row and "<td>purge</td>" in real_row
    per_account = dict(re.findall(r'data-run-account="([^"]+)">.*?<td class="num">([\d,]+)</td></tr>', real_row, re.S))
    assert per_account == {"cust": "0", "ent": "0", "pro": "0", "std": "2"}
    dry_row = body[body.index(f'data-run="{dry.pk}"') :]
    assert "dry run" in dry_row and "Would delete" in dry_row
    dry_counts = dict(re.findall(r'data-run-account="([^"]+)">.*?<td class="num">([\d,]+)</td></tr>', dry_row, re.S))
    assert dry_counts["std"] == "2"

    # Linked from the all-accounts view and the operator's menu.
    assert 'href="/operator/retention/"' in client.get("/analytics/operator/").content.decode()


@pytest.mark.django_db
def test_operator_page_is_for_staff_only(client, alice, charlie):
    for user in (alice, charlie):
        client.force_login(user)
        assert client.get("/operator/retention/").status_code == 403
        assert 'href="/operator/retention/"' not in client.get("/logs/").content.decode()
    client.logout()
    response = client.get("/operator/retention/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- The oldest-log read -----------------------------------------------------------------


@pytest.mark.django_db
def test_oldest_kept_log_is_the_accounts_own_minimum(acme, globex):
    base = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert selectors.oldest_kept_log(account=acme) is None
    make_log(globex, timestamp=base - timedelta(days=50))
    for days in (3, 9, 1):
        make_log(acme, timestamp=base - timedelta(days=days))
    # A row stamped with another retention class (stored before a period change).
    make_log(acme, timestamp=base - timedelta(days=20), retention_days=90)
    assert selectors.oldest_kept_log(account=acme) == base - timedelta(days=20)
    assert selectors.oldest_kept_log(account=globex) == base - timedelta(days=50)


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_oldest_kept_log_plan_is_an_index_probe_per_partition(acme, globex):
    """On PostgreSQL: no sequential scan and no sort, only the account's classes planned."""
    now = timezone.now()
    for account in (acme, globex):
        ingest_records(
            account=account,
            records=[rec(f"{account.slug}-{i}", now - timedelta(hours=i * 5)) for i in range(600)],
        )
    make_log(acme, timestamp=now - timedelta(days=10), retention_days=90)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE logs_requestlog")
    rows = request_logs(account=acme).order_by("timestamp", "id").values_list("timestamp", flat=True)
    plan = rows[:1].explain()
    # A Merge Append of the leaves' index scans, each read backwards from the account's
    # oldest row: no sequential scan, no Sort node (the Merge Append's "Sort Key" is not one).
    assert plan.startswith("Limit") and "Merge Append" in plan, plan
    assert "Seq Scan" not in plan and not re.search(r"(^|->)\s*Sort\s+\(", plan, re.M), plan
    scans = re.findall(r"Index (?:Only )?Scan Backward using (\S+)", plan)
    assert scans and all(name.endswith("_account_id_timestamp_id_idx") for name in scans), plan
    assert plan.count("Index Cond: (account_id = ") == len(scans), plan
    assert "_r30_" in plan and "_r90" in plan and "_r365" not in plan, plan
    assert selectors.oldest_kept_log(account=acme) == min(
        request_logs(account=acme).values_list("timestamp", flat=True)
    )


@pytest.mark.django_db
def test_retention_page_queries_do_not_grow_with_runs_or_rows(client, acme, alice):
    from django.test.utils import CaptureQueriesContext

    client.force_login(alice)
    now = timezone.now()
    make_log(acme, timestamp=now - timedelta(days=1))
    purge_expired_logs(now=now - timedelta(days=1))
    client.get("/retention/")  # the first view stores the current account in the session
    with CaptureQueriesContext(connection) as few:
        assert client.get("/retention/").status_code == 200
    for i in range(12):
        make_log(acme, timestamp=now - timedelta(days=2, minutes=i))
        purge_expired_logs(now=now - timedelta(hours=20 - i), dry_run=i % 2 == 0)
    with CaptureQueriesContext(connection) as many:
        body = client.get("/retention/").content.decode()
    assert len(many) == len(few)
    # The newest real run is the one shown (dry runs are skipped).
    newest_real = now - timedelta(hours=20 - 11)
    assert section(body, "last-purge").startswith(timezone.localtime(newest_real).strftime("%Y-%m-%d %H:%M"))
    # One read of the log (the oldest row) and one of the runs.
    assert sum('"logs_requestlog"' in q["sql"] for q in many.captured_queries) == 1
    assert sum('"logs_purgerun"' in q["sql"] for q in many.captured_queries) == 1
