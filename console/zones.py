"""The one time-zone choice of the console: times in the account's zone or in the viewer's.

The browser's zone comes in the `meterlog_tz` cookie (static/js/timezone.js sets it on every
page, the login page included, so the first signed-in request already carries it). The
choice is the user's (console.models.ViewerPreference), cached in the session so a page
costs no query for it. ViewerTimezoneMiddleware activates the chosen zone for the request:
every page, filter and chart that shows or reads a time uses `timezone.get_current_timezone()`.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from urllib.parse import unquote

from console.models import ViewerPreference, ZoneChoice, validate_timezone_name

BROWSER_ZONE_COOKIE = "meterlog_tz"
SESSION_KEY = "meterlog_zone_choice"
DEFAULT_CHOICE = ZoneChoice.MINE


def parse_zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    if not name:
        return None
    try:
        validate_timezone_name(name)
    except Exception:
        return None
    return zoneinfo.ZoneInfo(name)


def browser_zone(request) -> zoneinfo.ZoneInfo | None:
    # The browser writes the cookie URL-encoded (Asia%2FTokyo); Django does not decode it.
    return parse_zone(unquote(request.COOKIES.get(BROWSER_ZONE_COOKIE, "")))


def zone_choice(request) -> str:
    """The signed-in user's choice: from the session, else their stored preference."""
    session = request.session
    choice = session.get(SESSION_KEY)
    if choice not in ZoneChoice.values:
        choice = session[SESSION_KEY] = _stored_choice(request.user)  # a session from before login stored it
    return choice


def _stored_choice(user) -> str:
    stored = ViewerPreference.objects.filter(user=user).values_list("zone_choice", flat=True).first()
    return stored or DEFAULT_CHOICE


def remember_choice_at_login(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = _stored_choice(user)


def set_zone_choice(request, choice: str) -> None:
    ViewerPreference.objects.update_or_create(user=request.user, defaults={"zone_choice": choice})
    request.session[SESSION_KEY] = choice


@dataclass(frozen=True)
class ViewerZones:
    """What the topbar shows: the choice, both zones, and the one in use."""

    choice: str
    account: zoneinfo.ZoneInfo | None
    mine: zoneinfo.ZoneInfo | None

    @property
    def active(self) -> zoneinfo.ZoneInfo | None:
        # "My zone" before the browser has told it (cookies blocked): the account's.
        if self.choice == ZoneChoice.MINE and self.mine is not None:
            return self.mine
        return self.account or self.mine

    @property
    def using_mine(self) -> bool:
        return self.active is not None and self.active == self.mine and self.choice == ZoneChoice.MINE
