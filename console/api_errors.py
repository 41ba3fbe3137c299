"""How the API answers errors: the exception handler, and the check of query parameter names
every GET endpoint shares (KnownParametersMixin).

Kept apart from api_auth: DRF imports authentication classes while rest_framework.views
is still initialising, so that module must not import the views module."""

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler

from console.errors import EncryptionKeyError, QueryTimeout
from console.params import unknown_parameter_errors


class ParameterErrors(APIException):
    """400 {"errors": {param: [messages]}}, the answer every endpoint gives a bad parameter."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("Invalid parameters.")
        self.errors = errors


class KnownParametersMixin:
    """For an APIView: a query parameter whose name the endpoint does not take answers 400
    naming it, before the view runs (a typo such as `modle=` would otherwise be ignored and
    answer unfiltered rows). `query_parameters` lists the names the endpoint takes.

    Checked after authentication and permissions (401 / 403 come first, and say nothing
    about the parameters to a client without a token), and on its own: a typo is reported
    alone, then the values of the known parameters are checked as before."""

    query_parameters: tuple[str, ...] = ()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        errors = unknown_parameter_errors(request.query_params, self.query_parameters)
        if errors:
            raise ParameterErrors(errors)


def api_exception_handler(exc, context):
    """DRF's handler, plus: never a 500 for a client's mistake that escaped validation."""
    if isinstance(exc, ParameterErrors):
        return Response({"errors": exc.errors}, status=exc.status_code)
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
