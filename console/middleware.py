from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from console import zones
from console.errors import EncryptionKeyError
from console.tenancy import current_account


class ViewerTimezoneMiddleware:
    """Pages show and read times in the zone the user chose in the topbar (console.zones):
    the account's reporting zone or their browser's. Without a user, the browser's zone;
    without either, UTC. The API never uses this: it is UTC.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        api = request.path.startswith("/api/")
        mine = None if api else zones.browser_zone(request)
        user = getattr(request, "user", None)
        active = mine
        if user is not None and user.is_authenticated and not api:
            account = current_account(request)
            viewer = zones.ViewerZones(zones.zone_choice(request), account.zone if account else None, mine)
            request.viewer_zones = viewer
            active = viewer.active
        if active is not None:
            timezone.activate(active)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


# No route deletes or edits anything over HTTP: the console's writes are POSTed forms and the
# API's are POSTs (ingest); stored logs are never deleted or edited by hand at all (README,
# Retention). A route that needs one of these methods must be exempted here, on purpose.
REFUSED_METHODS = frozenset({"DELETE", "PUT", "PATCH"})
ALLOWED_METHODS = "GET, HEAD, POST, OPTIONS"


class RefuseEditMethodsMiddleware:
    """DELETE, PUT and PATCH answer 405 on every route, before authentication: otherwise a
    function view renders its page for them as for a GET (200) and an API view answers 401
    or 403, which reads as "you may not, but someone may"."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in REFUSED_METHODS:
            return self.get_response(request)
        detail = f'Method "{request.method}" not allowed: nothing in Meterlog is deleted or edited over HTTP.'
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": detail}, status=405)
        else:
            response = HttpResponseNotAllowed(ALLOWED_METHODS.split(", "), detail, content_type="text/plain")
        response["Allow"] = ALLOWED_METHODS
        return response


class EncryptionKeyErrorMiddleware:
    """A page that needs an encryption key the server lacks (logs.encryption) answers 503 with
    what to set, instead of a 500 traceback. (DRF views answer it in console.api_errors.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, EncryptionKeyError):
            return None
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": str(exception), "code": "encryption_key"}, status=503)
        return render(request, "503.html", {"exception": str(exception)}, status=503)
