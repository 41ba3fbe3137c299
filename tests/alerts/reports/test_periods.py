"""Which days a report covers and when it is due, in the account's zone."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.reports.periods import last_full_period, report_period, send_moment

BERLIN = ZoneInfo("Europe/Berlin")
KATHMANDU = ZoneInfo("Asia/Kathmandu")


@pytest.mark.parametrize(
    ("frequency", "now", "zone", "period"),
    [
        ("daily", datetime(2026, 11, 20, 0, 30, tzinfo=BERLIN), BERLIN, (date(2026, 11, 19), date(2026, 11, 19))),
        # 23:30 UTC on Nov 19 is already Nov 20 in Berlin: yesterday there is the 19th.
        ("daily", datetime(2026, 11, 19, 23, 30, tzinfo=UTC), BERLIN, (date(2026, 11, 19), date(2026, 11, 19))),
        ("daily", datetime(2026, 11, 19, 23, 30, tzinfo=UTC), UTC, (date(2026, 11, 18), date(2026, 11, 18))),
        ("weekly", datetime(2026, 11, 30, 9, tzinfo=BERLIN), BERLIN, (date(2026, 11, 23), date(2026, 11, 29))),
        ("weekly", datetime(2026, 12, 6, 23, tzinfo=BERLIN), BERLIN, (date(2026, 11, 23), date(2026, 11, 29))),
        ("monthly", datetime(2026, 12, 1, 0, 1, tzinfo=BERLIN), BERLIN, (date(2026, 11, 1), date(2026, 11, 30))),
        ("monthly", datetime(2027, 1, 15, tzinfo=KATHMANDU), KATHMANDU, (date(2026, 12, 1), date(2026, 12, 31))),
        ("monthly", datetime(2028, 3, 1, 5, tzinfo=BERLIN), BERLIN, (date(2028, 2, 1), date(2028, 2, 29))),
    ],
)
def test_last_full_period(frequency, now, zone, period):
    assert last_full_period(frequency, now=now, zone=zone) == period


def test_the_send_moment_is_the_local_hour_of_the_day_after():
    assert send_moment(date(2026, 11, 29), 8, BERLIN) == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    # Summer time: 08:00 in Berlin is 06:00 UTC.
    assert send_moment(date(2026, 6, 30), 8, BERLIN) == datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
    assert send_moment(date(2026, 11, 29), 0, KATHMANDU) == datetime(2026, 11, 29, 18, 15, tzinfo=UTC)


def test_a_monthly_report_compares_with_the_calendar_month_before():
    period = report_period(date(2026, 3, 1), date(2026, 3, 31), BERLIN, "monthly")
    assert period.previous_start == datetime(2026, 2, 1, tzinfo=BERLIN)
    assert period.previous_end == period.start == datetime(2026, 3, 1, tzinfo=BERLIN)
    # March 29 2026 has 23 hours in Berlin: the end is local midnight, not start + 31 days.
    assert period.end == datetime(2026, 4, 1, tzinfo=BERLIN)
    assert (period.first_day, period.last_day) == (date(2026, 3, 1), date(2026, 3, 31))


def test_a_range_compares_with_as_many_days_before():
    period = report_period(date(2026, 11, 10), date(2026, 11, 16), BERLIN)
    assert period.previous_start == datetime(2026, 11, 3, tzinfo=BERLIN)
    assert period.label == "2026-11-10 – 2026-11-16"
