"""Reads of alert rows."""

from alerts.models import AlertEvent
from logs.pagination import encode_cursor


def event_page(*, account, filters: dict) -> tuple[list[AlertEvent], str | None]:
    """A keyset page of the account's events, newest first (index alertevent_account_time)."""
    events = AlertEvent.objects.filter(account=account)
    if "start" in filters:
        events = events.filter(created_at__gte=filters["start"])
    if "end" in filters:
        events = events.filter(created_at__lt=filters["end"])
    for name in ("kind", "state"):
        if name in filters:
            events = events.filter(**{name: filters[name]})
    if "cursor" in filters:
        moment, pk = filters["cursor"]
        events = events.filter(created_at__lte=moment).exclude(created_at=moment, pk__gte=pk)
    limit = filters["limit"]
    rows = list(events.order_by("-created_at", "-pk")[: limit + 1])
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].pk) if len(rows) > limit else None
    return rows[:limit], next_cursor
