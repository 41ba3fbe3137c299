"""Bearer-token authentication for the API (placeholder, completed with the ingest API)."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.views import exception_handler


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None


def api_exception_handler(exc, context):
    return exception_handler(exc, context)
