"""Kept apart from api_auth: DRF imports authentication classes while rest_framework.views
is still initialising, so that module must not import the views module."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from console.errors import EncryptionKeyError, QueryTimeout


def api_exception_handler(exc, context):
    """DRF's handler, plus: never a 500 for a client's mistake that escaped validation."""
    if isinstance(exc, QueryTimeout):
        # Not the client's mistake, nor ours: the filter needs narrowing to finish in time.
        detail = str(exc) or QueryTimeout.message
        return Response({"detail": detail, "code": "query_timeout"}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if isinstance(exc, EncryptionKeyError):
        # The server's configuration, not the request: say what to set, never show the token.
        return Response({"detail": str(exc), "code": "encryption_key"}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response = exception_handler(exc, context)
    if response is None and isinstance(exc, (ValueError, UnicodeDecodeError)):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return response
