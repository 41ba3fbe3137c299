"""`manage.py scrub_secrets` on rows an older release stored: keys in the clear (one of them
also stored masked, in another spelling), a hex key, secrets inside request_params,
error_message, error_details and user_agent, rollups built from those rows (one day past
retention whose raw rows are purged), an export filter. After the command no table holds
the secret text, the rollups still add up, and a second run changes nothing."""

import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum

from analytics.models import UsageDay, UsageHour, UsageMinute, UsageQuarter, UsageSlice, UsageSliceDay, UsageUtcDay
from analytics.rollups import rebuild
from logs.guard import allow_log_writes
from logs.models import ApiKey, ExportRecord, RequestLog
from tests.factories import make_log

pytestmark = pytest.mark.django_db

OPENAI = "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789a1b2"
AZURE = "9f3c2b1a8e7d6c5b4a39281706f5e4d3"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SECRETS = (OPENAI, "Abcdefghijklmnopqrstuvwxyz0123456789", AZURE)
TABLES = (RequestLog, ApiKey, ExportRecord, UsageDay, UsageSlice, UsageSliceDay, UsageMinute, UsageQuarter,
          UsageHour, UsageUtcDay)  # fmt: skip


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def dump(account) -> str:
    """Every column of the account's rows in every table that can hold the text."""
    out = []
    with connection.cursor() as cursor:
        for model in TABLES:
            cursor.execute(f"SELECT * FROM {model._meta.db_table} WHERE account_id = %s", [account.pk])
            out.append(repr(cursor.fetchall()))
    return "\n".join(out)


def run(*args) -> str:
    out = io.StringIO()
    call_command("scrub_secrets", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def key_totals(account) -> dict[str, int]:
    days = UsageDay.objects.filter(account=account, projection=0).values("api_key").annotate(n=Sum("requests"))
    return {row["api_key"]: row["n"] for row in days}


def slice_totals(account) -> dict[str, int]:
    slices = UsageSlice.objects.filter(account=account, dimension=2).values("value").annotate(n=Sum("requests"))
    return {row["value"]: row["n"] for row in slices}


def day_rows(account, since) -> list[tuple]:
    days = UsageDay.objects.filter(account=account, day__gte=since)
    return sorted(days.values_list("projection", "day", "model", "api_key", "status", "requests", "cost"))


@pytest.fixture
def stored(acme, globex):
    """What an older release left: raw keys, secrets in the text columns, rollups of them."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    recent, old = now - timedelta(hours=2), now - timedelta(days=acme.retention_days + 5)
    make_log(acme, timestamp=recent, api_key=f"{OPENAI} ", user_agent=f"gw/1 ({AZURE})",
             request_params={"extra_headers": {"Authorization": f"Bearer {OPENAI}"}, "note": f"with {AZURE}"},
             status="error", error_message=f"401: key {OPENAI} invalid", error_details={"echo": AZURE})  # fmt: skip
    make_log(acme, timestamp=recent + timedelta(minutes=1), api_key="sk-…a1b2")  # the same key, stored masked
    make_log(acme, timestamp=recent, api_key=AZURE)
    make_log(acme, timestamp=recent, api_key="team-a", request_params={"trace_id": TRACE, "api_key": "[redacted]"})
    purged = make_log(acme, timestamp=old, api_key=AZURE)
    make_log(globex, timestamp=recent, api_key=OPENAI)
    ApiKey.objects.create(account=acme, identifier=f"{OPENAI} ", fingerprint=sha(f"{OPENAI} "), first_seen=old,
                          last_seen=recent, display_name="search team")  # fmt: skip
    ApiKey.objects.create(account=acme, identifier="sk-…a1b2", fingerprint=sha(OPENAI), first_seen=recent,
                          last_seen=now)  # fmt: skip
    ApiKey.objects.create(account=acme, identifier=AZURE, fingerprint=sha(AZURE), first_seen=old, last_seen=recent)
    ApiKey.objects.create(account=acme, identifier="team-a", fingerprint=sha("team-a"), first_seen=old, last_seen=now)
    ExportRecord.objects.create(account=acme, format="csv", filters={"api_key": [AZURE, "team-a"], "model": "m"})
    for account in (acme, globex):
        rebuild(account, old.date() - timedelta(days=1), now.date() + timedelta(days=1), past_retention=True)
    with allow_log_writes("purge"):  # as the purge would: its day is past retention
        purged.delete()  # only the rollups remember it
    return {"recent": recent, "old": old, "now": now}


def test_no_table_keeps_the_secrets_and_the_rollups_add_up(acme, globex, stored):
    before = dump(acme)
    assert all(secret in before for secret in SECRETS)
    assert key_totals(acme) == {f"{OPENAI} ": 1, "sk-…a1b2": 1, AZURE: 2, "team-a": 1}

    out = run("--account", "acme")
    assert "acme: 4 rows scanned, 2 rows changed; 2 API keys, " in out
    after = dump(acme)
    for secret in SECRETS:
        assert secret not in after
    assert OPENAI in dump(globex)  # another account: not asked for

    rows = {row.api_key: row for row in RequestLog.objects.filter(account=acme)}
    assert sorted(rows) == ["sk-…a1b2", "team-a", "…e4d3"]
    openai = RequestLog.objects.get(account=acme, status="error")
    assert openai.api_key == "sk-…a1b2"
    assert openai.user_agent == "gw/1 (…e4d3)"
    assert openai.request_params == {"extra_headers": {"Authorization": "sk-…a1b2"}, "note": "with …e4d3"}
    assert (openai.error_message, openai.error_details) == ("401: key sk-…a1b2 invalid", {"echo": "…e4d3"})
    assert rows["team-a"].request_params == {"trace_id": TRACE, "api_key": "[redacted]"}

    keys = {key.fingerprint: key for key in ApiKey.objects.filter(account=acme)}
    assert sorted(keys) == sorted([sha(OPENAI), sha(AZURE), sha("team-a")])
    merged = keys[sha(OPENAI)]
    assert (merged.identifier, merged.display_name) == ("sk-…a1b2", "search team")
    assert (merged.first_seen, merged.last_seen) == (stored["old"], stored["now"])
    assert keys[sha(AZURE)].identifier == "…e4d3"
    assert ExportRecord.objects.get(account=acme).filters == {"api_key": ["…e4d3", "team-a"], "model": "m"}

    # The two spellings' rows merged; the purged day's count is kept under the masked key.
    assert key_totals(acme) == {"sk-…a1b2": 2, "…e4d3": 2, "team-a": 1}
    assert slice_totals(acme) == {"sk-…a1b2": 2, "…e4d3": 2, "team-a": 1}
    minutes = UsageMinute.objects.filter(account=acme, dimension=2).values_list("value", flat=True)
    assert sorted(set(minutes)) == ["sk-…a1b2", "team-a", "…e4d3"]
    # Where raw rows remain, a rebuild from them finds the rollups the command wrote.
    renamed = day_rows(acme, stored["recent"].date())
    rebuild(acme, stored["recent"].date() - timedelta(days=1), stored["now"].date() + timedelta(days=1))
    assert renamed == day_rows(acme, stored["recent"].date())

    again = run("--account", "acme")
    assert "acme: 4 rows scanned, 0 rows changed; 0 API keys, 0 rollup rows, 0 export records changed" in again
    assert again.strip().endswith("1 accounts, 4 rows scanned, 0 rows changed in all tables")


def test_dry_run_counts_and_writes_nothing(acme, stored):
    before = dump(acme)
    out = run("--dry-run", "--account", "acme", "--batch-size", "1")
    assert "acme: 4 rows scanned, 2 rows would change; 2 API keys, " in out
    assert "Dry run: 1 accounts, 4 rows scanned" in out
    assert dump(acme) == before


def test_small_batches_walk_every_row_once(acme, globex, stored):
    out = run("--batch-size", "1")
    assert "[1/2] acme: 4 rows scanned, 2 rows changed" in out
    assert "[2/2] globex: 1 rows scanned, 1 rows changed" in out
    assert OPENAI not in dump(globex) and AZURE not in dump(acme)


def test_unknown_account_is_an_error(acme):
    with pytest.raises(CommandError, match="no account with slug nope"):
        run("--account", "nope")
