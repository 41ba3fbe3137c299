import zoneinfo
from urllib.parse import unquote

from django.utils import timezone

from console.models import validate_timezone_name
from console.tenancy import current_account

TZ_COOKIE = "meterlog_tz"


def _valid_zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    if not name:
        return None
    try:
        validate_timezone_name(name)
    except Exception:
        return None
    return zoneinfo.ZoneInfo(name)


class ViewerTimezoneMiddleware:
    """Pages show times in the viewer's zone.

    The browser reports its zone in a cookie (set by static/js/timezone.js); without it we
    fall back to the account's reporting zone, then UTC. The API never uses this: it is UTC.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The browser writes the cookie URL-encoded (Asia%2FTokyo); Django does not decode it.
        zone = _valid_zone(unquote(request.COOKIES.get(TZ_COOKIE, "")))
        user = getattr(request, "user", None)
        if zone is None and user is not None and user.is_authenticated and not request.path.startswith("/api/"):
            account = current_account(request)
            zone = _valid_zone(account.timezone) if account else None
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
