"""The console's hooks into django-axes (login throttling): which client IP a login comes
from (settings.AXES_CLIENT_IP_CALLABLE) and the page a locked-out login gets
(settings.AXES_LOCKOUT_CALLABLE): 429, in the console's style, saying how long to wait."""

import math

from axes.helpers import get_cool_off
from django.conf import settings
from django.shortcuts import render


def client_ip(request) -> str | None:
    """REMOTE_ADDR, or behind settings.TRUSTED_PROXY_COUNT reverse proxies that each append
    the address they saw to X-Forwarded-For, the entry the outermost of them appended.

    Entries left of it were written by the client and prove nothing. (django-ipware's proxy
    count expects the proxies themselves in the header and gives None for a chain of another
    length, which would put every such client in one lockout bucket.)"""
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    return hops[-count] if len(hops) >= count else remote


def lockout_response(request, original_response=None, credentials=None):
    # Each attempt during a lockout starts the cool-off again (axes' default), so the wait
    # counts from this attempt.
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    response = render(
        request,
        "registration/lockout.html",
        {"minutes": max(1, math.ceil(seconds / 60)), "username": (credentials or {}).get("username", "")},
        status=429,
    )
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
