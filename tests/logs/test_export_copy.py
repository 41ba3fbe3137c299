"""CSV through `COPY ... TO STDOUT` (PostgreSQL; logs.exports.sql.copy_csv_chunks) gives byte
for byte the file of the values path and of the reference encoding of `log_record`, at any
chunk boundary, with the JSON memo starting over, and for values PostgreSQL's CSV writes
differently from Python's (empty strings, bare \\r, U+2028, row ends)."""

import gzip
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from psycopg import pq

from logs import selectors
from logs.exports import chunks
from logs.exports import sql as export_sql
from logs.exports.encoders import csv_copied_body
from logs.models import ExportRecord
from tests.factories import make_log
from tests.logs.test_export_fast_path import T0, _export, _reference, _reference_rows, _tricky

pytestmark = pytest.mark.postgres_only


def _awkward(acme) -> None:
    _tricky(acme)
    make_log(
        acme,
        request_id="separators",
        timestamp=T0 - timedelta(days=5),
        model="",  # PostgreSQL writes "" for an empty string, Python nothing
        error_message="line\u2028sep, \x0b vt and a bare\rreturn",
        user_agent=" padded ",
        error_code="\\.",  # PostgreSQL's end-of-data marker, quoted by it
        request_params={"s": "tab\there", "q": '"'},
        tags={"k": "\r\n"},
    )
    make_log(acme, request_id="priced", timestamp=T0 - timedelta(days=6), cost=Decimal("0.000027000000"))


@pytest.fixture
def copies(monkeypatch):
    """Counts the COPY chunk reads, to prove the path under test is the COPY one."""
    calls = []
    real = export_sql.copy_csv_chunks

    def spy(*args, **kwargs):
        calls.append(kwargs["chunk_rows"])
        yield from real(*args, **kwargs)

    monkeypatch.setattr(export_sql, "copy_csv_chunks", spy)
    return calls


@pytest.mark.django_db
@pytest.mark.parametrize("chunk_rows", [1, 3, 11, 20_000])
def test_copy_csv_is_byte_identical(client, acme, globex, monkeypatch, copies, chunk_rows):
    monkeypatch.setattr(chunks, "COPY_CHUNK_SIZE", chunk_rows)
    _awkward(acme)
    make_log(globex, request_id="other-account", timestamp=T0)
    records = _reference_rows(acme)
    assert len(records) == 11
    expected = _reference(records, "csv")

    assert _export(client, acme, "format=csv") == expected
    assert gzip.decompress(_export(client, acme, "format=csv&compress=gzip")) == expected
    assert copies == [chunk_rows, chunk_rows]

    monkeypatch.setattr(chunks, "USE_COPY", False)
    assert _export(client, acme, "format=csv") == expected
    assert len(copies) == 2  # the values path did not COPY


def _parts_with_status(queryset, *, chunk_rows: int, overlap: bool, timeout=selectors.statement_timeout):
    """The parts, each with the connection's state when it was given out (ACTIVE: a COPY is
    running on the server while the consumer holds the part)."""
    from django.db import connection

    for rows, data in export_sql.copy_csv_chunks(queryset, chunk_rows=chunk_rows, timeout=timeout, overlap=overlap):
        yield rows, data, connection.connection.pgconn.transaction_status


@pytest.mark.django_db
@pytest.mark.parametrize("part_rows", [1, 2])
def test_overlapped_chunks_are_byte_identical_and_overlap(client, acme, monkeypatch, copies, part_rows):
    """The download sends the next chunk's COPY before giving out the rest of a chunk; the
    first part of every chunk comes with no statement running (the caller records the
    export after the first part)."""
    monkeypatch.setattr(chunks, "COPY_CHUNK_SIZE", 3)
    monkeypatch.setattr(export_sql, "PART_ROWS", part_rows)
    _awkward(acme)
    expected = _reference(_reference_rows(acme), "csv")

    assert _export(client, acme, "format=csv") == expected
    assert gzip.decompress(_export(client, acme, "format=csv&compress=gzip")) == expected
    assert copies == [3, 3]
    assert list(ExportRecord.objects.values_list("rows", flat=True)) == [11, 11]

    filterset = selectors.filter_request_logs(account=acme, params={})
    assert filterset.is_valid()
    parts = list(_parts_with_status(filterset.qs, chunk_rows=3, overlap=True))
    assert [rows for rows, _, _ in parts if rows] == [3, 3, 3, 2]
    assert sum(data.count(b"\r\n") for _, data, _ in parts) >= 11
    running = [status == pq.TransactionStatus.ACTIVE for _, _, status in parts]
    # Chunks of 3 rows in parts of 1 (2): the first part of each chunk is given out before
    # the next COPY is sent, the other parts of the first three chunks while it runs.
    assert running == ([False, True, True] * 3 + [False, False] if part_rows == 1 else [False, True] * 3 + [False])
    assert b"".join(data for _, data, _ in parts) == expected[expected.index(b"\r\n") + 2 :]

    # Without overlap (a job), each chunk is given out before the next one is read: one
    # chunk in memory at a time.
    reads = []
    real_read = export_sql._read_copy

    def counted_read(tails):
        reads.append(1)
        return real_read(tails)

    monkeypatch.setattr(export_sql, "_read_copy", counted_read)
    alone = []
    for rows, data, status in _parts_with_status(filterset.qs, chunk_rows=3, overlap=False):
        alone.append((rows, data, status, len(reads)))
    assert [data for _, data, _, _ in alone] == [data for _, data, _ in parts]
    assert not any(status == pq.TransactionStatus.ACTIVE for _, _, status, _ in alone)
    per_chunk = [3, 3, 3, 2] if part_rows == 1 else [2, 2, 2, 1]
    assert [read for _, _, _, read in alone] == [k + 1 for k, n in enumerate(per_chunk) for _ in range(n)]


@pytest.mark.django_db
def test_an_overlapped_chunk_that_times_out_is_read_again_alone(acme, monkeypatch):
    """A COPY that waited on a slow client past the statement timeout: the same chunk is
    read again with nothing running beside it, no row lost or repeated, and the rest of the
    export goes without overlap."""
    monkeypatch.setattr(export_sql, "PART_ROWS", 1)
    _awkward(acme)
    expected = _reference(_reference_rows(acme), "csv")
    blocks = []

    @contextmanager
    def timeout_on_second_chunk():
        blocks.append(len(blocks) + 1)
        with selectors.statement_timeout():
            yield
        if len(blocks) == 2:  # the first overlapped chunk: as if the server had cancelled it
            raise selectors.QueryTimeout(selectors.QueryTimeout.message)

    filterset = selectors.filter_request_logs(account=acme, params={})
    assert filterset.is_valid()
    parts = list(_parts_with_status(filterset.qs, chunk_rows=3, overlap=True, timeout=timeout_on_second_chunk))
    assert blocks == [1, 2, 3, 4, 5]  # chunks 1, 2 (timed out), 2 again, 3, 4
    assert b"".join(data for _, data, _ in parts) == expected[expected.index(b"\r\n") + 2 :]
    assert [rows for rows, _, _ in parts if rows] == [3, 3, 3, 2]
    running = [status == pq.TransactionStatus.ACTIVE for _, _, status in parts]
    assert running == [False, True, True] + [False] * 8

    # A timeout of a chunk read alone is the export's error, as before.
    @contextmanager
    def always_late():
        with selectors.statement_timeout():
            yield
        raise selectors.QueryTimeout(selectors.QueryTimeout.message)

    with pytest.raises(selectors.QueryTimeout):
        list(export_sql.copy_csv_chunks(filterset.qs, chunk_rows=3, timeout=always_late, overlap=True))


@pytest.mark.django_db(transaction=True)
def test_a_download_abandoned_while_a_copy_runs_leaves_a_usable_connection(acme, monkeypatch):
    from django.db import connection

    from logs.models import RequestLog

    monkeypatch.setattr(export_sql, "PART_ROWS", 1)
    _awkward(acme)
    filterset = selectors.filter_request_logs(account=acme, params={})
    assert filterset.is_valid()
    parts = _parts_with_status(filterset.qs, chunk_rows=3, overlap=True)
    assert next(parts)[2] != pq.TransactionStatus.ACTIVE
    assert next(parts)[2] == pq.TransactionStatus.ACTIVE  # the second chunk's COPY is running
    parts.close()  # the client went away
    assert connection.connection is None  # closed: it was mid-COPY
    assert RequestLog.objects.filter(account=acme).count() == 11  # a new connection


@pytest.mark.django_db
def test_copy_with_filters_and_a_memo_that_starts_over(client, acme, monkeypatch, copies):
    monkeypatch.setattr(export_sql, "MEMO_SIZE", 1)
    monkeypatch.setattr(chunks, "COPY_CHUNK_SIZE", 2)
    _awkward(acme)
    wanted = [r for r in _reference_rows(acme) if r["status"] == "success" and r["timestamp"] >= "2026-11-15"]
    assert 3 < len(wanted) < 11
    query = "format=csv&status=success&start=2026-11-15T00:00:00Z"
    assert _export(client, acme, query) == _reference(wanted, "csv")
    assert copies == [2]


@pytest.mark.django_db
def test_json_cells_come_from_a_memo_per_column(acme, monkeypatch):
    """A miss of the row memo (details, params and tags together) decodes each JSON column
    at most once per distinct value."""
    decoded = []
    real = export_sql._json_cell

    def spy(text, empty):
        decoded.append(text)
        return real(text, empty)

    monkeypatch.setattr(export_sql, "_json_cell", spy)
    for i in range(6):
        make_log(
            acme,
            request_id=f"r{i}",
            timestamp=T0 - timedelta(minutes=i),
            request_params={"n": i % 3},
            tags={"t": i % 2},
        )
    filterset = selectors.filter_request_logs(account=acme, params={})
    assert filterset.is_valid()
    body = b"".join(
        csv_copied_body(
            export_sql.copy_csv_chunks(filterset.qs, chunk_rows=10, timeout=selectors.statement_timeout),
            chunks.RowCounter(),
        )
    )
    assert body == _reference(_reference_rows(acme), "csv")
    # 6 distinct (params, tags) pairs, but 3 params, 2 tags and one (empty) details value.
    assert sorted(decoded) == sorted(["", '{"n": 0}', '{"n": 1}', '{"n": 2}', '{"t": 0}', '{"t": 1}'])


@pytest.mark.django_db
def test_repeated_filters_and_other_formats_keep_the_values_path(client, acme, copies):
    _awkward(acme)
    _export(client, acme, "format=csv&model=gpt-4o-mini&model=")
    assert copies == [chunks.COPY_CHUNK_SIZE]  # one model (the empty value is dropped): COPY
    _export(client, acme, "format=csv&model=gpt-4o-mini&model=claude")
    _export(client, acme, "format=ndjson")
    assert copies == [chunks.COPY_CHUNK_SIZE]


@pytest.mark.django_db
def test_copy_of_an_account_without_rows(client, acme, copies):
    assert _export(client, acme, "format=csv") == _reference([], "csv")


@pytest.mark.django_db
def test_copy_errors_become_django_errors_and_leave_a_usable_connection(acme):
    from django.db import OperationalError, connection, transaction

    from logs import selectors

    def copy(sql):  # the export's own send and read (_read_copy keeps the part between
        # the first comma and the sentinel of each row)
        export_sql._send_copy(sql.encode())
        return export_sql._read_copy(export_sql._JsonTails())

    make_log(acme, request_id="still-there")
    # An error part-way (the third row divides by zero), one before any row, a timeout.
    with pytest.raises(OperationalError, match="division by zero"), transaction.atomic():
        # rows shaped like the export's: id, a value, the (empty) JSON tail after \x1f
        copy("COPY (SELECT x, 1 / (x - 3), E'\\x1f\\x1e\\x1e' FROM generate_series(1, 5) x) TO STDOUT (FORMAT csv)")
    with pytest.raises(OperationalError, match="no_such_column"), transaction.atomic():
        copy("COPY (SELECT no_such_column) TO STDOUT")
    with pytest.raises(selectors.QueryTimeout), selectors.statement_timeout(ms=50):
        copy(
            "COPY (SELECT x, pg_sleep(0.02), E'\\x1f\\x1e\\x1e' FROM generate_series(1, 100) x) TO STDOUT (FORMAT csv)"
        )
    # Then a whole export through the same connection, its filter merged into the statement.
    chunks = export_sql.copy_csv_chunks(
        selectors.request_logs(account=acme).filter(request_id="still-there"),
        chunk_rows=10,
        timeout=selectors.statement_timeout,
    )
    ((rows, part),) = list(chunks)
    assert rows == 1 and part.count(b"\r\n") == 1 and part.startswith(b"still-there,2026-11-20T12:00:00")
    with connection.cursor() as cursor:
        cursor.execute("SELECT request_id FROM logs_requestlog WHERE account_id = %s", [acme.pk])
        assert cursor.fetchall() == [("still-there",)]


@pytest.mark.django_db
@pytest.mark.parametrize("chunk_rows", [1, 4, 20_000])
def test_copy_csv_safe_is_byte_identical_to_the_values_path(client, acme, monkeypatch, copies, chunk_rows):
    """csv_safe's prefix is made in SQL on the COPY path and in Python on the values path:
    the same bytes, at any chunk boundary, plain and gzip; the default stays unprefixed."""
    from tests.logs.test_export_csv_safe import _safe
    from tests.logs.test_export_csv_safe import _seed as _formulas

    monkeypatch.setattr(chunks, "COPY_CHUNK_SIZE", chunk_rows)
    _awkward(acme)
    _formulas(acme)
    records = _reference_rows(acme)
    assert len(records) == 14
    safe = _reference(_safe(records), "csv")
    assert safe != _reference(records, "csv")

    assert _export(client, acme, "format=csv&csv_safe=1") == safe
    assert gzip.decompress(_export(client, acme, "format=csv&compress=gzip&csv_safe=1")) == safe
    assert _export(client, acme, "format=csv") == _reference(records, "csv")
    assert copies == [chunk_rows] * 3

    monkeypatch.setattr(chunks, "USE_COPY", False)
    assert _export(client, acme, "format=csv&csv_safe=1") == safe
    assert gzip.decompress(_export(client, acme, "format=csv&compress=gzip&csv_safe=1")) == safe
    assert len(copies) == 3  # the values path did not COPY
