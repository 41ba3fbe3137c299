"""Archive before purge (issue 15): with METERLOG_ARCHIVE_BEFORE_PURGE on, the purge writes the
rows it is about to delete to per-run files, verifies and lists them, and only then deletes;
an account whose archive fails keeps its rows. SQLite and PostgreSQL; the partition-drop path
is PostgreSQL only."""

import gzip
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from logs import archive
from logs.api.serializers import log_record
from logs.exports.format import EXPORT_FIELDS
from logs.gate import request_logs
from logs.ingest.services import ingest_records
from logs.models import RequestLog
from logs.partitions import create_partitions, period_start, period_table
from logs.retention import archiving, services
from logs.retention.models import PurgeRun, PurgeStatus
from logs.retention.selectors import account_cutoffs
from logs.retention.services import purge_expired_logs
from tests.factories import make_account
from tests.logs.test_archive import stored
from tests.logs.test_purge import ids, rec

# On PostgreSQL the purge drops whole daily partitions (tests/logs/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("immediate_constraints")]


@pytest.fixture
def archive_dir(settings, tmp_path):
    settings.METERLOG_ARCHIVE_BEFORE_PURGE = True
    settings.METERLOG_ARCHIVE_DIR = tmp_path / "archive"
    return tmp_path / "archive"


@pytest.fixture
def std():
    """A standard (30-day) account with two rows on each side of the cutoff and one far past it."""
    now = datetime.now(UTC)
    account = make_account("std")
    ages = {"keep-1d": 1, "keep-29d": 29, "gone-31d": 31, "gone-33d": 33, "gone-70d": 70}
    records = [rec(request_id, now - timedelta(days=age, minutes=5)) for request_id, age in ages.items()]
    assert ingest_records(account=account, records=records).accepted == 5
    return account


def run(command: str, *args) -> str:
    out = io.StringIO()
    call_command(command, *map(str, args), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def rendered(account, request_ids) -> dict[str, dict]:
    """The rows as an archive file holds them (the export's keys and values)."""
    rows = RequestLog.objects.filter(account=account, request_id__in=request_ids)
    return {row.request_id: {name: log_record(row)[name] for name in EXPORT_FIELDS} for row in rows}


def purge_entries(directory, slug: str | None = None) -> list[dict]:
    """The purge files listed in every manifest of the directory (of one account)."""
    found = []
    for month in archive.archived_months(directory):
        manifest = json.loads(archive.manifest_path(directory, month).read_text())
        found += [e for e in manifest["files"] if e.get("kind") == "purge" and slug in (None, e["account"])]
    return found


def decoded(path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def files_in(directory) -> list[str]:
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def test_the_archive_holds_exactly_the_deleted_rows_and_restores_them(std, archive_dir):
    gone = ["gone-31d", "gone-33d", "gone-70d"]
    expected = rendered(std, gone)
    before = stored(std, request_id__in=gone)

    output = run("purge_logs")
    run_id = PurgeRun.objects.get().pk
    assert ids(std) == ["keep-1d", "keep-29d"]
    entries = purge_entries(archive_dir, "std")
    names = [e["file"] for e in entries]
    assert all(re.fullmatch(rf"std/std-\d{{4}}-\d{{2}}\.purge-{run_id}\.ndjson\.gz", n) for n in names), names
    records = [r for n in names for r in decoded(archive_dir / n)]
    assert sorted(r["request_id"] for r in records) == gone
    assert {r["request_id"]: r for r in records} == expected
    for entry in entries:  # each file holds its own month's rows, oldest first
        rows = decoded(archive_dir / entry["file"])
        assert {r["timestamp"][:7] for r in rows} == {entry["month"]}
        assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)
        assert entry["rows"] == len(rows) and entry["purge_run"] == run_id
    assert f"archived 3 rows to {len(names)} file(s): {', '.join(names)}" in output
    assert f"Archived: 3 rows in {len(names)} file(s) under {archive_dir}." in output
    run_record = PurgeRun.objects.get()
    assert run_record.status == PurgeStatus.DONE
    assert run_record.accounts[0]["archived"] == {"files": names, "rows": 3}
    assert "OK: " in run("verify_archive", archive_dir)

    restored = make_account("restored")
    for name in names:
        run("import_logs", "restored", archive_dir / name, "--format", "meterlog-ndjson")
    assert stored(restored) == before


def test_verify_archive_checks_the_purge_files(std, archive_dir):
    purge_expired_logs()
    entry = purge_entries(archive_dir)[-1]
    path = archive_dir / entry["file"]
    data = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join(data[:-1]), mtime=0))  # one row fewer
    with pytest.raises(CommandError) as failed:
        run("verify_archive", archive_dir)
    assert f"{entry['file']}: {entry['rows'] - 1} rows, the manifest says {entry['rows']}" in str(failed.value)
    assert f"{entry['file']}: sha256 " in str(failed.value)


def test_two_daily_purges_write_two_files_and_never_overwrite(std, archive_dir):
    now = datetime.now(UTC)
    first = purge_expired_logs(now=now - timedelta(days=2))  # takes gone-33d and gone-70d
    first_files = {e["file"]: (archive_dir / e["file"]).read_bytes() for e in purge_entries(archive_dir)}
    assert ids(std) == ["gone-31d", "keep-1d", "keep-29d"]
    second = purge_expired_logs(now=now)  # two days later: gone-31d
    assert ids(std) == ["keep-1d", "keep-29d"]

    entries = purge_entries(archive_dir)
    by_run = {}
    for entry in entries:
        by_run.setdefault(entry["purge_run"], []).extend(r["request_id"] for r in decoded(archive_dir / entry["file"]))
    assert {k: sorted(v) for k, v in by_run.items()} == {first.pk: ["gone-33d", "gone-70d"], second.pk: ["gone-31d"]}
    assert {name: (archive_dir / name).read_bytes() for name in first_files} == first_files
    assert "OK: " in run("verify_archive", archive_dir)


def test_a_taken_file_name_is_never_overwritten(std, archive_dir):
    cutoff = account_cutoffs(now=datetime.now(UTC))[0]
    progress = archiving._Progress(stop_at=float("inf"))
    entries, _ = archiving._archive_account(cutoff, run_id=7, progress=progress)
    first = {e["file"]: (archive_dir / e["file"]).read_bytes() for e in entries}
    again, _ = archiving._archive_account(cutoff, run_id=7, progress=progress)  # as if run ids restarted
    assert {name: (archive_dir / name).read_bytes() for name in first} == first
    assert [e["file"].rsplit(".purge-", 1)[1] for e in entries + again] == ["7.ndjson.gz"] * len(entries) + [
        "7-2.ndjson.gz"
    ] * len(again)
    assert len(purge_entries(archive_dir)) == 2 * len(entries)
    assert "OK: " in run("verify_archive", archive_dir)


def test_an_unwritable_directory_keeps_the_rows_and_fails_the_run(std, archive_dir, tmp_path, settings):
    (tmp_path / "not-a-dir").write_text("a file")
    settings.METERLOG_ARCHIVE_DIR = tmp_path / "not-a-dir" / "archive"
    empty = make_account("empty")  # nothing to delete: needs no directory, no error
    with pytest.raises(CommandError, match=r"archive before purge failed.*std: cannot write to .*not-a-dir"):
        run("purge_logs")
    assert ids(std) == ["gone-31d", "gone-33d", "gone-70d", "keep-1d", "keep-29d"]
    purge = PurgeRun.objects.get()
    assert purge.status == PurgeStatus.FAILED and purge.deleted == 0 and purge.finished_at is not None
    assert "std: cannot write to" in purge.error and "empty" not in purge.error
    entry = {e["slug"]: e for e in purge.accounts}
    assert "cannot write to" in entry["std"]["archive_error"] and entry["std"]["deleted"] == 0
    assert "archive_error" not in entry["empty"] and empty.pk == entry["empty"]["account_id"]


def test_one_accounts_failure_does_not_stop_the_others(std, archive_dir):
    now = datetime.now(UTC)
    other = make_account("other")
    ingest_records(
        account=other, records=[rec("o-new", now - timedelta(days=2)), rec("o-old", now - timedelta(days=40))]
    )
    archive_dir.mkdir()
    (archive_dir / "std").write_text("in the way of std's directory")
    out = io.StringIO()
    with pytest.raises(CommandError, match="std:"):
        call_command("purge_logs", stdout=out)
    assert "std: 30 days" in out.getvalue() and "archive FAILED, rows kept" in out.getvalue()
    assert len(ids(std)) == 5
    assert ids(other) == ["o-new"]
    assert [r["request_id"] for e in purge_entries(archive_dir) for r in decoded(archive_dir / e["file"])] == ["o-old"]
    assert "OK: " in run("verify_archive", archive_dir)


def test_a_file_that_does_not_verify_is_removed_and_the_rows_stay(std, archive_dir, monkeypatch):
    monkeypatch.setattr(archive, "check_file", lambda target, name, entry: [f"{name}: sha256 differs"])
    run_record = purge_expired_logs()
    assert run_record.status == PurgeStatus.FAILED and "verify failed" in run_record.error
    assert len(ids(std)) == 5
    assert files_in(archive_dir) == []


def test_a_run_that_dies_after_archiving_loses_nothing(std, archive_dir, monkeypatch):
    def die(*args, **kwargs):
        raise RuntimeError("killed")

    # Killed once the files are written, before any row goes (drops come first on PostgreSQL).
    monkeypatch.setattr(services, "_drop_partitions", die)
    monkeypatch.setattr(services, "_delete_rows", die)
    with pytest.raises(RuntimeError):
        purge_expired_logs()
    assert len(ids(std)) == 5 and len(purge_entries(archive_dir)) >= 1
    monkeypatch.undo()
    purge_expired_logs()
    assert ids(std) == ["keep-1d", "keep-29d"]
    # Two runs' files hold the same three rows; both verify, and a restore has each row once.
    runs = {e["purge_run"] for e in purge_entries(archive_dir)}
    assert len(runs) == 2
    assert "OK: " in run("verify_archive", archive_dir)
    restored = make_account("restored")
    outputs = [
        run("import_logs", "restored", archive_dir / e["file"], "--format", "meterlog-ndjson")
        for e in purge_entries(archive_dir)
    ]
    assert sorted(ids(restored)) == ["gone-31d", "gone-33d", "gone-70d"]
    assert sum(int(re.search(r"duplicates: (\d+)", o)[1]) for o in outputs) == 3


def test_an_archive_out_of_time_deletes_only_what_it_archived(std, archive_dir, monkeypatch):
    # gone-70d is at least 37 days older than gone-31d / gone-33d: another month.
    real = archiving._Progress
    monkeypatch.setattr(archiving, "_Progress", lambda stop_at: real(stop_at=0.0))  # time's up at once
    output = run("purge_logs")
    assert "archive out of time: only rows before " in output and "Stopped early" in output
    first = PurgeRun.objects.get()
    assert first.status == PurgeStatus.PARTIAL
    assert ids(std) == ["gone-31d", "gone-33d", "keep-1d", "keep-29d"]
    entry = first.accounts[0]
    assert entry["archived"]["rows"] == 1 and entry["deleted"] == 1
    assert datetime.fromisoformat(entry["archived_until"]).day == 1  # a month boundary
    monkeypatch.undo()
    second = purge_expired_logs()
    assert second.status == PurgeStatus.DONE and ids(std) == ["keep-1d", "keep-29d"]
    archived = sorted(r["request_id"] for e in purge_entries(archive_dir) for r in decoded(archive_dir / e["file"]))
    assert archived == ["gone-31d", "gone-33d", "gone-70d"]  # each once


def test_a_dry_run_writes_nothing(std, archive_dir):
    output = run("purge_logs", "--dry-run")
    assert "would delete 3 rows" in output
    assert files_in(archive_dir) == [] and len(ids(std)) == 5


def test_archiving_off_writes_nothing(std, archive_dir, settings):
    settings.METERLOG_ARCHIVE_BEFORE_PURGE = False
    output = run("purge_logs")
    assert "deleted 3 rows" in output and "archived" not in output
    assert ids(std) == ["keep-1d", "keep-29d"]
    assert files_in(archive_dir) == []
    assert "archived" not in PurgeRun.objects.get().accounts[0]


def test_the_operator_page_shows_what_each_run_archived(std, archive_dir, client, olivia):
    purge = purge_expired_logs()
    client.force_login(olivia)
    body = client.get("/operator/retention/").content.decode()
    row = body[body.index(f'data-run="{purge.pk}"') :]
    cell = re.search(r'<td class="nowrap run-archived">(.*?)</td>', row, re.S)[1]
    files = len(purge.accounts[0]["archived"]["files"])
    assert re.sub(r"\s+", " ", cell).strip() == f"{files} file{'s' if files > 1 else ''}, 3 rows"

    make_account("other")
    ingest_records(account=std, records=[rec("gone-40d", datetime.now(UTC) - timedelta(days=40))])
    (archive_dir / "std").rename(archive_dir / "std-moved")
    (archive_dir / "std").write_text("in the way")
    failed = purge_expired_logs()
    body = client.get("/operator/retention/").content.decode()
    row = body[body.index(f'data-run="{failed.pk}"') : body.index(f'data-run="{purge.pk}"')]
    cell = re.sub(r"<[^>]+>|\s+", " ", re.search(r'<td class="nowrap run-archived">(.*?)</td>', row, re.S)[1])
    assert " ".join(cell.split()) == "0 files, 0 rows failed: std"
    assert "Failed" in row and "archive before purge failed" in row


# --- PostgreSQL: whole partitions --------------------------------------------------------


@pytest.fixture
def _checks_done():
    """As in test_purge_partitions.py: run deferred FK checks as rows go in, so the test's
    own rows do not stop a DROP TABLE."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _attached(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relispartition FROM pg_class WHERE relname = %s", [name])
        row = cursor.fetchone()
        return bool(row and row[0])


@pytest.mark.postgres_only
@pytest.mark.usefixtures("_checks_done")
def test_a_dropped_partitions_rows_are_archived_before_it_goes(archive_dir):
    now = datetime.now(UTC)
    weeks = [period_start(30, now - timedelta(days=d)) for d in (45, 52)]
    create_partitions(30, weeks)
    std = make_account("std")
    ingest_records(account=std, records=[rec(f"std-{d}d", now - timedelta(days=d)) for d in (2, 45, 52)])
    run_record = purge_expired_logs(now=now)
    dropped = {p["name"] for p in run_record.partitions}
    assert dropped == {period_table(30, week) for week in weeks}
    assert ids(std) == ["std-2d"]
    archived = [r["request_id"] for e in purge_entries(archive_dir, "std") for r in decoded(archive_dir / e["file"])]
    assert sorted(archived) == ["std-45d", "std-52d"]
    assert run_record.accounts[0]["archived"]["rows"] == 2 and "unarchived" not in run_record.accounts[0]
    assert "OK: " in run("verify_archive", archive_dir)


@pytest.mark.postgres_only
@pytest.mark.usefixtures("_checks_done")
def test_a_failed_account_keeps_its_partition_attached(archive_dir):
    now = datetime.now(UTC)
    week = period_start(30, now - timedelta(days=52))
    create_partitions(30, [week])
    std, other = make_account("std"), make_account("other")
    ingest_records(account=std, records=[rec("std-52d", now - timedelta(days=52))])
    ingest_records(account=other, records=[rec("other-52d", now - timedelta(days=52))])
    archive_dir.mkdir()
    (archive_dir / "std").write_text("in the way")
    run_record = purge_expired_logs(now=now)
    assert run_record.status == PurgeStatus.FAILED and run_record.partitions == []
    assert _attached(period_table(30, week))
    assert ids(std) == ["std-52d"]  # kept, still readable
    assert ids(other) == []  # deleted by a batch from the partition that stayed, after its archive
    assert [r["request_id"] for e in purge_entries(archive_dir) for r in decoded(archive_dir / e["file"])] == [
        "other-52d"
    ]
    assert request_logs(account=other).count() == 0
