"""Which local days a report covers, and when a subscription's report is due.

A report covers whole local days of the account's zone: yesterday (daily), last Monday to
Sunday (weekly) or last calendar month (monthly). Its previous period, for the changes, is
the day, week or calendar month just before. It is due from `hour` o'clock local time on
the day after the period (so on Monday for a week, on the 1st for a month).
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.models import Frequency
from analytics.reports import ReportPeriod
from analytics.timekeys import local_midnight, previous_month


def last_full_period(frequency: str, *, now: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """(first day, last day) of the latest whole period before `now` in `zone`."""
    today = now.astimezone(zone).date()
    if frequency == Frequency.DAILY:
        day = today - timedelta(days=1)
        return day, day
    if frequency == Frequency.WEEKLY:
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday - timedelta(days=1)
    if frequency == Frequency.MONTHLY:
        first = today.replace(day=1)
        return previous_month(first), first - timedelta(days=1)
    raise ValueError(f"unknown frequency {frequency!r}")


def send_moment(last_day: date, hour: int, zone: ZoneInfo) -> datetime:
    """When the report of a period ending on `last_day` is due: `hour` o'clock local time the
    day after (a wall-clock hour that a DST change skips counts as the hour after it)."""
    return datetime.combine(last_day + timedelta(days=1), time(hour), tzinfo=zone)


def report_period(first_day: date, last_day: date, zone: ZoneInfo, frequency: str = "") -> ReportPeriod:
    """The analytics ReportPeriod of whole local days, by day; its previous period is the
    calendar month before for a monthly report, the same number of days before otherwise."""
    start, end = local_midnight(first_day, zone), local_midnight(last_day + timedelta(days=1), zone)
    if frequency == Frequency.MONTHLY and first_day.day == 1:
        previous_start = local_midnight(previous_month(first_day), zone)
    else:
        previous_start = local_midnight(first_day - timedelta(days=(last_day - first_day).days + 1), zone)
    label = first_day.isoformat() if first_day == last_day else f"{first_day.isoformat()} – {last_day.isoformat()}"
    return ReportPeriod(start, end, previous_start, start, "day", zone, label)
