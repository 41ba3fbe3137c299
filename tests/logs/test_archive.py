"""`manage.py archive_logs` / `verify_archive` and logs/archive.py (DB tag h9).

An archive is Meterlog's NDJSON export of one account's calendar month (UTC), gzip, oldest
first, with a sha256 manifest; importing it into an empty account restores the same rows.
"""

import gzip
import hashlib
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from logs import archive
from logs.api.serializers import log_record
from logs.exports.format import EXPORT_FIELDS
from logs.imports.services import import_file
from logs.ingest.services import ingest_records
from logs.models import ModelPrice, RequestLog
from tests.factories import make_account, make_log

pytestmark = pytest.mark.django_db

AWKWARD = 'comma, "quotes"\nnew line\ttab ünïcødé 😀 \\N'


def run(command: str, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def lines_of(path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def stored(account, **filters) -> list[dict]:
    skip = {"id", "account", "account_id", "price_id", "ingested_at"}
    queryset = RequestLog.objects.filter(account=account, **filters).order_by("request_id")
    return [{k: v for k, v in row.items() if k not in skip} for row in queryset.values()]


def manifest_sha(directory, month: str, account: str) -> str:
    manifest = json.loads((directory / f"manifest-{month}.json").read_text())
    return next(entry["sha256"] for entry in manifest["files"] if entry["account"] == account)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _two_months(account) -> None:
    """October 2026 rows with every awkward value, and two September rows."""
    ModelPrice.objects.create(
        model="gpt-4o-mini",
        input_per_mtok=Decimal("0.15"),
        output_per_mtok=Decimal("0.60"),
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    records = [
        {"request_id": "priced", "timestamp": "2026-10-01T00:00:00.000000Z", "model": "gpt-4o-mini",
         "status": "success", "prompt_tokens": 1000, "completion_tokens": 10, "cached_tokens": 0,
         "api_key": "sk-live-abcdefghijklmnop1234", "ip_address": "2001:db8::7", "user_agent": AWKWARD,
         "latency_ms": 0, "request_params": {"temperature": 0.7, "stop": ["\n", ","]}, "tags": {"a,b": 'x"y'}},
        {"request_id": "unpriced, odd\nid ✓", "timestamp": "2026-10-15T08:30:00.000001Z", "model": "unknown-model",
         "status": "success", "prompt_tokens": 5, "completion_tokens": 0, "ip_address": "203.0.113.9"},
        {"request_id": "err", "timestamp": "2026-10-20T00:00:00+02:00", "model": "gpt-4o", "status": "error",
         "cost": "0", "reasoning_tokens": 12, "error_code": "429", "error_message": AWKWARD,
         "error_details": {"nested": [1, None, {"k": AWKWARD}], "n": 1.5}, "tags": {"env": "prod"}},
        {"request_id": "last-instant", "timestamp": "2026-10-31T23:59:59.999999Z", "model": "gpt-4o",
         "status": "error", "cost": "0.000000000001", "error_details": "plain text"},
        {"request_id": "september", "timestamp": "2026-09-30T23:59:59.999999Z", "model": "gpt-4o-mini",
         "status": "success", "prompt_tokens": 1, "completion_tokens": 1},
        {"request_id": "september-2", "timestamp": "2026-09-02T10:00:00Z", "model": "gpt-4o-mini",
         "status": "success", "prompt_tokens": 2, "completion_tokens": 2},
    ]  # fmt: skip
    result = ingest_records(account=account, records=records)
    assert (result.accepted, result.rejected) == (6, [])


OCTOBER = {"timestamp__gte": ts("2026-10-01T00:00:00"), "timestamp__lt": ts("2026-11-01T00:00:00")}


def test_archive_restores_the_same_rows(acme, tmp_path):
    _two_months(acme)
    out, err = run("archive_logs", "--account", "acme", "--month", "2026-10", "--to", tmp_path)
    path = tmp_path / "acme" / "acme-2026-10.ndjson.gz"
    assert "acme: 4 rows -> acme/acme-2026-10.ndjson.gz" in err
    assert "acme: 4 rows (acme/acme-2026-10.ndjson.gz)" in out

    records = lines_of(path)
    # Oldest first, keys in the export order, values exactly as the API renders them.
    assert [r["request_id"] for r in records] == ["priced", "unpriced, odd\nid ✓", "err", "last-instant"]
    assert all(list(r) == list(EXPORT_FIELDS) for r in records)
    source = RequestLog.objects.filter(account=acme, **OCTOBER).order_by("timestamp", "id")
    assert records == [{name: log_record(row)[name] for name in EXPORT_FIELDS} for row in source]
    assert "september" not in {r["request_id"] for r in records}
    by_id = {r["request_id"]: r for r in records}
    assert by_id["priced"]["api_key"] == "sk-…1234" and by_id["priced"]["cost"] == "0.000156"
    assert by_id["unpriced, odd\nid ✓"]["cost"] is None
    assert by_id["err"]["timestamp"] == "2026-10-19T22:00:00.000000Z"

    target = make_account("restored-b")
    out, _err = run("import_logs", "restored-b", path, "--format", "meterlog-ndjson")
    assert "accepted: 4\nduplicates: 0" in out
    copied, original = stored(target), stored(acme, **OCTOBER)
    assert len(copied) == 4 and copied == original
    assert {row["request_id"] for row in copied}.isdisjoint({"september", "september-2"})
    by_stored = {row["request_id"]: row for row in copied}  # spot checks that the comparison covers values
    assert by_stored["priced"]["cost"] == Decimal("0.000156") and by_stored["priced"]["ip_address"] == "2001:db8::7"
    assert by_stored["unpriced, odd\nid ✓"]["cost"] is None
    assert by_stored["err"]["error_details"] == {"nested": [1, None, {"k": AWKWARD}], "n": 1.5}

    report = import_file(account=target, path=path, fmt="meterlog-ndjson")
    assert (report.accepted, report.duplicates, report.rejected_count) == (0, 4, 0)
    assert stored(target) == copied


def test_manifest_lists_each_file_with_its_checksum(acme, globex, tmp_path):
    _two_months(acme)
    make_log(globex, request_id="g1", timestamp=ts("2026-10-05T12:00:00"))
    before = datetime.now(UTC)
    run("archive_logs", "--month", "2026-10", "--to", tmp_path)
    manifest = json.loads((tmp_path / "manifest-2026-10.json").read_text())
    assert manifest["format"] == "meterlog-ndjson"
    assert manifest["format_version"] == list(EXPORT_FIELDS)
    assert manifest["month"] == "2026-10"
    assert [entry["account"] for entry in manifest["files"]] == ["acme", "globex"]
    for entry, rows in zip(manifest["files"], (4, 1), strict=True):
        data = (tmp_path / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
        assert entry["rows"] == rows == len(gzip.decompress(data).splitlines())
        assert entry["month"] == "2026-10"
        created = datetime.fromisoformat(entry["created_at"])
        assert entry["created_at"].endswith("Z") and before <= created <= datetime.now(UTC)
    assert manifest["files"][1]["file"] == "globex/globex-2026-10.ndjson.gz"
    # Customer data: owner-only files.
    assert (tmp_path / "acme" / "acme-2026-10.ndjson.gz").stat().st_mode & 0o777 == 0o600


def test_month_boundaries_are_utc_start_inclusive_end_exclusive(acme, tmp_path):
    make_log(acme, request_id="prev-last", timestamp=ts("2026-09-30T23:59:59.999999"))
    make_log(acme, request_id="first", timestamp=ts("2026-10-01T00:00:00.000000"))
    make_log(acme, request_id="last", timestamp=ts("2026-10-31T23:59:59.999999"))
    make_log(acme, request_id="next-first", timestamp=ts("2026-11-01T00:00:00.000000"))
    run("archive_logs", "--month", "2026-10", "--to", tmp_path)
    assert [r["request_id"] for r in lines_of(tmp_path / "acme" / "acme-2026-10.ndjson.gz")] == ["first", "last"]
    run("archive_logs", "--month", "2026-11", "--to", tmp_path)
    assert [r["request_id"] for r in lines_of(tmp_path / "acme" / "acme-2026-11.ndjson.gz")] == ["next-first"]
    assert archive.month_bounds("2026-12") == (ts("2026-12-01T00:00:00"), ts("2027-01-01T00:00:00"))


def test_keyset_chunks_cover_ties_on_timestamp(acme, tmp_path, monkeypatch):
    """Chunks of 2 over rows sharing a timestamp: every row once, in (timestamp, id) order."""
    monkeypatch.setattr(archive, "CHUNK_SIZE", 2)
    same = ts("2026-10-10T10:00:00.5")
    made = [make_log(acme, request_id=f"tie-{n}", timestamp=same) for n in range(5)]
    made.append(make_log(acme, request_id="early", timestamp=ts("2026-10-02T00:00:00")))
    item = archive.archive_month(account=acme, month="2026-10", to_dir=tmp_path)
    assert item.rows == 6
    ids = [r["request_id"] for r in lines_of(tmp_path / item.file)]
    assert ids == ["early"] + [row.request_id for row in sorted(made[:5], key=lambda row: row.pk)]


def test_tenant_isolation_and_all_accounts(acme, globex, tmp_path):
    make_log(acme, request_id="a1", timestamp=ts("2026-10-03T00:00:00"))
    make_log(acme, request_id="a2", timestamp=ts("2026-10-04T00:00:00"))
    make_log(globex, request_id="g1", timestamp=ts("2026-10-05T00:00:00"))
    make_log(globex, request_id="a1", timestamp=ts("2026-10-06T00:00:00"))  # same id, other tenant
    quiet = make_account("quiet")
    make_log(quiet, request_id="q-sept", timestamp=ts("2026-09-10T00:00:00"))

    out, err = run("archive_logs", "--month", "2026-10", "--to", tmp_path)
    acme_rows = lines_of(tmp_path / "acme" / "acme-2026-10.ndjson.gz")
    globex_rows = lines_of(tmp_path / "globex" / "globex-2026-10.ndjson.gz")
    assert [(r["request_id"], r["timestamp"]) for r in acme_rows] == [
        ("a1", "2026-10-03T00:00:00.000000Z"),
        ("a2", "2026-10-04T00:00:00.000000Z"),
    ]
    assert [(r["request_id"], r["timestamp"]) for r in globex_rows] == [
        ("g1", "2026-10-05T00:00:00.000000Z"),
        ("a1", "2026-10-06T00:00:00.000000Z"),
    ]
    # An account without rows in the month: listed as 0, no file, not in the manifest.
    assert not (tmp_path / "quiet").exists()
    assert "quiet: no rows, no file" in err
    assert "month 2026-10: 2 files, 4 rows" in out and "  quiet: 0 rows\n" in out
    manifest = json.loads((tmp_path / "manifest-2026-10.json").read_text())
    assert [entry["account"] for entry in manifest["files"]] == ["acme", "globex"]


def test_account_option_archives_one_account_and_keeps_the_others_in_the_manifest(acme, globex, tmp_path):
    make_log(acme, request_id="a1", timestamp=ts("2026-10-03T00:00:00"))
    make_log(globex, request_id="g1", timestamp=ts("2026-10-05T00:00:00"))
    out, _err = run("archive_logs", "--account", "globex", "--month", "2026-10", "--to", tmp_path)
    assert not (tmp_path / "acme").exists()
    assert "month 2026-10: 1 files, 1 rows" in out and "acme" not in out
    manifest = json.loads((tmp_path / "manifest-2026-10.json").read_text())
    assert [entry["account"] for entry in manifest["files"]] == ["globex"]

    run("archive_logs", "--account", "acme", "--month", "2026-10", "--to", tmp_path)
    manifest = json.loads((tmp_path / "manifest-2026-10.json").read_text())
    assert [(e["account"], e["rows"]) for e in manifest["files"]] == [("acme", 1), ("globex", 1)]
    run("verify_archive", tmp_path, "--month", "2026-10")


def test_rerun_is_idempotent_and_follows_the_rows(acme, tmp_path):
    _two_months(acme)
    run("archive_logs", "--month", "2026-10", "--to", tmp_path)
    path = tmp_path / "acme" / "acme-2026-10.ndjson.gz"
    first_bytes = path.read_bytes()
    first = json.loads((tmp_path / "manifest-2026-10.json").read_text())["files"]

    run("archive_logs", "--month", "2026-10", "--to", tmp_path)
    again = json.loads((tmp_path / "manifest-2026-10.json").read_text())["files"]
    assert path.read_bytes() == first_bytes  # no time stamp in the gzip header
    assert [{k: v for k, v in e.items() if k != "created_at"} for e in again] == [
        {k: v for k, v in e.items() if k != "created_at"} for e in first
    ]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["acme", "acme-2026-10.ndjson.gz", "manifest-2026-10.json"]

    make_log(acme, request_id="late-arrival", timestamp=ts("2026-10-20T00:00:00"))
    run("archive_logs", "--month", "2026-10", "--to", tmp_path)
    entry = json.loads((tmp_path / "manifest-2026-10.json").read_text())["files"][0]
    assert entry["rows"] == 5 == len(lines_of(path))
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() != first[0]["sha256"]
    run("verify_archive", tmp_path)


def test_a_crash_mid_write_keeps_the_previous_file(acme, tmp_path, monkeypatch):
    make_log(acme, request_id="a1", timestamp=ts("2026-10-03T00:00:00"))
    make_log(acme, request_id="a2", timestamp=ts("2026-10-04T00:00:00"))
    run("archive_logs", "--month", "2026-10", "--to", tmp_path)
    path = tmp_path / "acme" / "acme-2026-10.ndjson.gz"
    previous = path.read_bytes()
    make_log(acme, request_id="a3", timestamp=ts("2026-10-05T00:00:00"))

    def explode(row):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(archive, "encode_row", explode)
    with pytest.raises(RuntimeError):
        run("archive_logs", "--month", "2026-10", "--to", tmp_path)
    assert path.read_bytes() == previous
    assert sorted(p.name for p in (tmp_path / "acme").iterdir()) == ["acme-2026-10.ndjson.gz"]
    run("verify_archive", tmp_path)


def test_verify_archive_names_a_tampered_or_missing_file(acme, globex, tmp_path):
    make_log(acme, request_id="a1", timestamp=ts("2026-10-03T00:00:00"))
    make_log(globex, request_id="g1", timestamp=ts("2026-10-05T00:00:00"))
    make_log(globex, request_id="g2", timestamp=ts("2026-11-05T00:00:00"))
    run("archive_logs", "--month", "2026-10", "--to", tmp_path)
    run("archive_logs", "--month", "2026-11", "--to", tmp_path)
    out, _err = run("verify_archive", tmp_path)
    assert out == "OK: 3 files in 2 month(s) match their manifest\n"

    # Same size, one flipped byte in the compressed data.
    path = tmp_path / "acme" / "acme-2026-10.ndjson.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CommandError) as excinfo:
        run("verify_archive", tmp_path)
    problems = str(excinfo.value).splitlines()[1:]
    assert problems[0].startswith("acme/acme-2026-10.ndjson.gz: sha256 ")
    assert problems[0].endswith(" does not match the manifest's " + manifest_sha(tmp_path, "2026-10", "acme"))
    assert problems[1].startswith("acme/acme-2026-10.ndjson.gz: not a readable gzip file")
    assert len(problems) == 2
    # --month limits the check to that month's manifest.
    run("verify_archive", tmp_path, "--month", "2026-11")

    # A valid gzip file with a row dropped: checksum and row count both named.
    (tmp_path / "globex" / "globex-2026-11.ndjson.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(CommandError) as excinfo:
        run("verify_archive", tmp_path, "--month", "2026-11")
    assert "globex/globex-2026-11.ndjson.gz: 0 rows, the manifest says 1" in str(excinfo.value)

    (tmp_path / "globex" / "globex-2026-10.ndjson.gz").unlink()
    with pytest.raises(CommandError, match=r"globex/globex-2026-10\.ndjson\.gz: missing"):
        run("verify_archive", tmp_path, "--month", "2026-10")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "month must be YYYY-MM"),
        (["--month", "2026-1"], "month must be YYYY-MM"),
        (["--month", "October"], "month must be YYYY-MM"),
        (["--month", "2026-10", "--account", "nobody"], "no account with slug 'nobody'"),
    ],
)
def test_archive_command_errors(acme, tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        run("archive_logs", *args, "--to", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_archive_into_an_unwritable_dir(acme, tmp_path):
    make_log(acme, request_id="a1", timestamp=ts("2026-10-03T00:00:00"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(CommandError, match=r"cannot write to .*a-file/archive"):
        run("archive_logs", "--month", "2026-10", "--to", blocker / "archive")


def test_verify_archive_errors(tmp_path):
    with pytest.raises(CommandError, match="no such directory"):
        run("verify_archive", tmp_path / "missing")
    with pytest.raises(CommandError, match=r"no manifest-YYYY-MM\.json in"):
        run("verify_archive", tmp_path)
    with pytest.raises(CommandError, match="no manifest for 2026-10"):
        run("verify_archive", tmp_path, "--month", "2026-10")
    with pytest.raises(CommandError, match="month must be YYYY-MM"):
        run("verify_archive", tmp_path, "--month", "10-2026")
    (tmp_path / "manifest-2026-10.json").write_text("{not json")
    with pytest.raises(CommandError, match=r"manifest-2026-10\.json is not a readable manifest"):
        run("verify_archive", tmp_path)
