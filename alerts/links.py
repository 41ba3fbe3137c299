"""Links from alerts to the console: the alerts page and the log list filtered to a breach."""

from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse

from alerts.models import RuleKind


def absolute(path: str) -> str:
    """A console path as a full URL for mail and webhooks (METERLOG_BASE_URL; a bare path
    without it)."""
    base = settings.METERLOG_BASE_URL.rstrip("/")
    return f"{base}{path}" if base else path


def logs_path(
    *,
    kind: str,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    model: str = "",
    api_key: str = "",
    threshold=None,
) -> str:
    """The log list showing the requests behind an event: its window (in the account's zone,
    as the log page shows times), its scope, and for an error rate the errors only, for a
    token spike the requests above the limit. Same parameters as logs/filters.py."""
    query = [("start", start.astimezone(zone).isoformat()), ("end", end.astimezone(zone).isoformat())]
    if model:
        query.append(("model", model))
    if api_key:
        query.append(("api_key", api_key))
    if kind == RuleKind.ERROR_RATE:
        query.append(("status", "error"))
    elif kind == RuleKind.TOKEN_SPIKE and threshold is not None:
        # min_tokens is inclusive; the rule fires strictly above the limit.
        query.append(("min_tokens", str(int(threshold) + 1)))
    return f"{reverse('logs:list')}?{urlencode(query)}"


def event_logs_path(event) -> str:
    """The log list of an event's breach (an AlertEvent or a Notice: the same fields)."""
    return logs_path(
        kind=event.kind,
        start=event.window_start,
        end=event.window_end,
        zone=event.account.zone,
        model=event.model,
        api_key=event.api_key,
        threshold=event.threshold,
    )
