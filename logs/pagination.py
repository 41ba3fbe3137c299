"""Keyset (cursor) pagination over the request log, newest first.

A page is "the next `limit` rows older than (timestamp, id)": every filter's index ends
with (timestamp DESC, id DESC), so the database walks straight to the cursor instead of
counting off an OFFSET, and page 10,000 costs what page 1 costs.
"""

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class InvalidCursor(ValueError):
    pass


def encode_cursor(timestamp: datetime, pk: int) -> str:
    # Whole-microsecond arithmetic: float timestamps lose the last digit for current dates.
    micros = (timestamp.astimezone(UTC) - _EPOCH) // _MICROSECOND
    raw = json.dumps([micros, pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        micros, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(micros, int) or not isinstance(pk, int) or pk < 0:
            raise ValueError
        timestamp = _EPOCH + micros * _MICROSECOND
    except (ValueError, TypeError, binascii.Error, OverflowError, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is malformed; use the next_cursor value of a previous page") from exc
    return timestamp, pk


def after_cursor(queryset: QuerySet, cursor: str | None) -> QuerySet:
    if not cursor:
        return queryset
    timestamp, pk = decode_cursor(cursor)
    # "timestamp <= t" is the index bound the planner can seek to (and prune partitions
    # with); the OR only discards the few rows that share timestamp t.
    return queryset.filter(Q(timestamp__lte=timestamp) & (Q(timestamp__lt=timestamp) | Q(id__lt=pk)))


@dataclass
class KeysetPage:
    rows: list
    next_cursor: str | None


def keyset_page(
    queryset: QuerySet,
    *,
    cursor: str | None,
    limit: int,
    branches: list[QuerySet] | None = None,
    fields: tuple[str, ...] | None = None,
    fetch: Callable[[QuerySet], list] | None = None,
) -> KeysetPage:
    """The page after `cursor`. `branches`, when given, are querysets whose union is
    `queryset` (one per value of a repeated filter): each is walked in keyset order on its
    own index and limited, and only the union of those few rows is sorted.

    `fields`, when given, makes the rows tuples of those columns (`values_list`) instead of
    model instances (exports: no per-row model construction); it must name "timestamp"
    and "id", which the next cursor is made of. `fetch`, when given, runs the final
    queryset instead of `list()` (exports run its SQL themselves); its rows must keep the
    raw timestamp and id at those positions."""
    # One row more than asked tells whether an older page exists, without a COUNT.
    if branches and len(branches) > 1:
        parts = [_select(after_cursor(branch, cursor), fields)[: limit + 1] for branch in branches]
        ordered = parts[0].union(*parts[1:], all=True).order_by("-timestamp", "-id")
    else:
        ordered = _select(after_cursor(queryset, cursor), fields)
    rows = (fetch or list)(ordered[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        if fields is None:
            next_cursor = encode_cursor(last.timestamp, last.pk)
        else:
            next_cursor = encode_cursor(last[fields.index("timestamp")], last[fields.index("id")])
    return KeysetPage(rows=rows, next_cursor=next_cursor)


def _select(queryset: QuerySet, fields: tuple[str, ...] | None) -> QuerySet:
    ordered = queryset.order_by("-timestamp", "-id")
    return ordered if fields is None else ordered.values_list(*fields)


def before_cursor(queryset: QuerySet, cursor: str) -> QuerySet:
    """Rows newer than the cursor's (timestamp, id): the mirror of after_cursor."""
    timestamp, pk = decode_cursor(cursor)
    return queryset.filter(Q(timestamp__gte=timestamp) & (Q(timestamp__gt=timestamp) | Q(id__gt=pk)))


def keyset_newer(
    queryset: QuerySet, *, cursor: str, limit: int, branches: list[QuerySet] | None = None
) -> tuple[list, bool]:
    """The `limit` rows just newer than `cursor`, oldest first, and whether more newer rows
    exist. The same index walk as keyset_page, backwards: the live tail asks "what arrived
    after the first row shown", the detail page "which row is just above this one"."""
    if branches and len(branches) > 1:
        parts = [before_cursor(b, cursor).order_by("timestamp", "id")[: limit + 1] for b in branches]
        ordered = parts[0].union(*parts[1:], all=True).order_by("timestamp", "id")
    else:
        ordered = before_cursor(queryset, cursor).order_by("timestamp", "id")
    rows = list(ordered[: limit + 1])
    return rows[:limit], len(rows) > limit
