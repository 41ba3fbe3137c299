from datetime import UTC, datetime

import pytest

from logs.filters import RequestLogFilterSet
from logs.pagination import decode_cursor, encode_cursor
from logs.selectors import filter_request_logs, log_page, log_totals
from tests.factories import make_log


def test_cursor_round_trip_keeps_microseconds():
    ts = datetime(2026, 11, 24, 21, 42, 31, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(ts, 42)) == (ts, 42)


@pytest.mark.django_db
def test_keyset_pages_cover_every_row_once(acme, globex):
    for minute in range(25):
        make_log(acme, timestamp=datetime(2026, 11, 20, 12, minute % 5, tzinfo=UTC))
    make_log(globex)
    seen, cursor = [], None
    while True:
        fs = filter_request_logs(account=acme, params={})
        assert fs.is_valid()
        page = log_page(filterset=fs, cursor=cursor, limit=7)
        seen += [row.request_id for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 25 == len(set(seen))
    fs = filter_request_logs(account=acme, params={})
    fs.is_valid()
    totals = log_totals(filterset=fs)
    assert totals.requests == 25 and totals.total_tokens == 25 * 120


def test_unknown_status_is_rejected_by_name():
    fs = RequestLogFilterSet(data={"status": "weird"})
    assert not fs.is_valid()
    assert "status" in fs.form.errors
