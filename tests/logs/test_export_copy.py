"""CSV through `COPY ... TO STDOUT` (PostgreSQL; logs.export_sql.copy_csv_chunks) gives byte
for byte the file of the values path and of the reference encoding of `log_record`, at any
chunk boundary, with the JSON memo starting over, and for values PostgreSQL's CSV writes
differently from Python's (empty strings, bare \\r, U+2028, row ends)."""

import gzip
from datetime import timedelta
from decimal import Decimal

import pytest

from logs import export_sql, exports
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
    monkeypatch.setattr(exports, "COPY_CHUNK_SIZE", chunk_rows)
    _awkward(acme)
    make_log(globex, request_id="other-account", timestamp=T0)
    records = _reference_rows(acme)
    assert len(records) == 11
    expected = _reference(records, "csv")

    assert _export(client, acme, "format=csv") == expected
    assert gzip.decompress(_export(client, acme, "format=csv&compress=gzip")) == expected
    assert copies == [chunk_rows, chunk_rows]

    monkeypatch.setattr(exports, "USE_COPY", False)
    assert _export(client, acme, "format=csv") == expected
    assert len(copies) == 2  # the values path did not COPY


@pytest.mark.django_db
def test_copy_with_filters_and_a_memo_that_starts_over(client, acme, monkeypatch, copies):
    monkeypatch.setattr(export_sql, "MEMO_SIZE", 1)
    monkeypatch.setattr(exports, "COPY_CHUNK_SIZE", 2)
    _awkward(acme)
    wanted = [r for r in _reference_rows(acme) if r["status"] == "success" and r["timestamp"] >= "2026-11-15"]
    assert 3 < len(wanted) < 11
    query = "format=csv&status=success&start=2026-11-15T00:00:00Z"
    assert _export(client, acme, query) == _reference(wanted, "csv")
    assert copies == [2]


@pytest.mark.django_db
def test_repeated_filters_and_other_formats_keep_the_values_path(client, acme, copies):
    _awkward(acme)
    _export(client, acme, "format=csv&model=gpt-4o-mini&model=")
    assert copies == [exports.COPY_CHUNK_SIZE]  # one model (the empty value is dropped): COPY
    _export(client, acme, "format=csv&model=gpt-4o-mini&model=claude")
    _export(client, acme, "format=ndjson")
    assert copies == [exports.COPY_CHUNK_SIZE]


@pytest.mark.django_db
def test_copy_of_an_account_without_rows(client, acme, copies):
    assert _export(client, acme, "format=csv") == _reference([], "csv")


@pytest.mark.django_db
def test_copy_errors_become_django_errors_and_leave_a_usable_connection(acme):
    from django.db import OperationalError, connection, transaction

    from logs import selectors

    make_log(acme, request_id="still-there")
    # An error part-way (the third row divides by zero), one before any row, a timeout.
    with pytest.raises(OperationalError, match="division by zero"), transaction.atomic():
        rows = list(export_sql._copy_out("COPY (SELECT 1 / (x - 3) FROM generate_series(1, 5) x) TO STDOUT", None))
    with pytest.raises(OperationalError, match="no_such_column"), transaction.atomic():
        list(export_sql._copy_out("COPY (SELECT no_such_column) TO STDOUT", None))
    with pytest.raises(selectors.QueryTimeout), selectors.statement_timeout(ms=50):
        list(export_sql._copy_out("COPY (SELECT pg_sleep(0.02) FROM generate_series(1, 100)) TO STDOUT", None))
    rows = list(export_sql._copy_out("COPY (SELECT %s::text, x FROM generate_series(1, 3) x) TO STDOUT", ["a'b"]))
    assert rows == [b"a'b\t1\n", b"a'b\t2\n", b"a'b\t3\n"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT request_id FROM logs_requestlog WHERE account_id = %s", [acme.pk])
        assert cursor.fetchall() == [("still-there",)]
