"""Repeated filters (?api_key=a&api_key=b) page through the same rows whichever plan runs:
on PostgreSQL one UNION ALL branch per value, elsewhere one IN filter."""

from datetime import UTC, datetime, timedelta

import pytest
from django.http import QueryDict

from logs.selectors import _branches, filter_request_logs, log_page
from tests.factories import make_log

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_repeated_filter_pages_hold_each_matching_row_once_newest_first(acme, globex):
    keys = ["key-a", "key-b", "key-c", "key-d"]
    expected = []
    for i in range(40):
        # Shared timestamps across keys: ties must be broken by id, the same in every branch.
        ts = START + timedelta(seconds=i // 3)
        row = make_log(acme, request_id=f"r{i:03d}", api_key=keys[i % 4], timestamp=ts)
        if row.api_key in ("key-a", "key-c"):
            expected.append(row)
    make_log(globex, request_id="other-account", api_key="key-a")
    expected.sort(key=lambda r: (r.timestamp, r.pk), reverse=True)

    params = QueryDict("api_key=key-a&api_key=key-c")
    seen, cursor = [], None
    while True:
        fs = filter_request_logs(account=acme, params=params)
        assert fs.is_valid()
        page = log_page(filterset=fs, cursor=cursor, limit=6)
        seen += [row.request_id for row in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [row.request_id for row in expected]
    assert len(seen) == 20


@pytest.mark.django_db
def test_branches_are_used_on_postgresql_only(acme):
    from django.db import connection

    fs = filter_request_logs(account=acme, params={"model": ["a", "b", "c"], "status": ["error"]})
    assert fs.is_valid()
    branches = _branches(fs)
    if connection.vendor == "postgresql":
        assert branches is not None and len(branches) == 3
    else:
        assert branches is None


@pytest.mark.django_db
def test_rows_of_an_earlier_retention_class_stay_visible(acme):
    """A tier change moves new rows to another partition class; old rows must still show."""
    make_log(acme, request_id="before-upgrade")  # standard: 30-day class
    acme.tier = "enterprise"
    acme.save()
    make_log(acme, request_id="after-upgrade", timestamp=START + timedelta(hours=1))
    fs = filter_request_logs(account=acme, params={})
    assert fs.is_valid()
    page = log_page(filterset=fs, cursor=None, limit=10)
    assert [row.request_id for row in page.rows] == ["after-upgrade", "before-upgrade"]
    assert sorted({row.retention_days for row in page.rows}) == [30, 365]
