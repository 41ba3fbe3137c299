"""Parameter checks the log API's endpoints share (the list, the export, and, through
their imports, the usage and alert events APIs): the order of `start` / `end`, the message
of an unknown `range`, and signed cursors.

Cursors are signed (django.core.signing, keyed by SECRET_KEY) with a salt per endpoint: a
cursor is a (timestamp, id) position, and one made up or edited by hand would still page
somewhere, silently; signed, it answers 400, and a log list cursor is refused by the alert
events list. Rotating SECRET_KEY (with SECRET_KEY_FALLBACKS) keeps the cursors of pages
already handed out valid; without fallbacks a client restarts from the first page.
"""

from datetime import datetime

from django.core import signing
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from console.params import text_problem
from logs.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor
from logs.ranges import LOG_RANGES, time_bounds

END_BEFORE_START = "Must be after start."
FORGED_CURSOR = "cursor was not given out by this endpoint (edited, or from another one); use next_cursor of a page."


def range_message(preset: str) -> str:
    return f"Unknown range {preset!r}; use one of: {', '.join(LOG_RANGES)}."


def window_errors(
    preset: str | None, start: datetime | None, end: datetime | None, *, now: datetime | None = None
) -> dict[str, list[str]]:
    """{"end": [...]} when the window [start, end) is empty: `end` at or before `start`, or
    before the start of the `range` preset (an empty 200 would look like "no traffic")."""
    start, end = time_bounds(preset, start, end, now=now)
    if start is not None and end is not None and end <= start:
        return {"end": [END_BEFORE_START]}
    return {}


def filterset_window_errors(filterset, errors: dict[str, list[str]], *, now: datetime | None = None) -> None:
    """Adds to `errors` what the log FilterSet does not check itself: an empty window and an
    unknown range preset answered with the valid values (as the usage API answers it)."""
    preset = filterset.data.get("range", "")
    if "range" in errors and not text_problem(preset):  # a NUL's message says what is wrong
        errors["range"] = [range_message(preset)]
    if not errors.keys() & {"range", "start", "end"}:
        cleaned = filterset.form.cleaned_data
        errors.update(window_errors(cleaned.get("range"), cleaned.get("start"), cleaned.get("end"), now=now))


def _signer(scope: str) -> signing.Signer:
    return signing.Signer(salt=f"meterlog.api.cursor.{scope}")


def sign_cursor(cursor: str | None, *, scope: str) -> str | None:
    """The `next_cursor` a client sees: the pagination cursor and its signature."""
    return None if cursor is None else _signer(scope).sign(cursor)


def unsign_cursor(value: str, *, scope: str) -> str:
    """The pagination cursor inside a client's `cursor`, or InvalidCursor."""
    try:
        return _signer(scope).unsign(value)
    except signing.BadSignature as exc:
        raise InvalidCursor(FORGED_CURSOR) from exc


def page_parameters(noun: str) -> list[OpenApiParameter]:
    """The schema's `limit` and `cursor` of a keyset-paged list ("Records", "Events")."""
    return [
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            description=f"{noun} per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
        ),
        OpenApiParameter(
            "cursor",
            OpenApiTypes.STR,
            description="`next_cursor` of the previous page, unchanged: cursors are signed, an edited one answers 400.",
        ),
    ]
