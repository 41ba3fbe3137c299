"""The read API: GET /api/v1/logs (filtered, keyset-paged) and GET /api/v1/logs/<request_id>,
plus the OpenAPI schema and its browsable docs.

The list takes exactly the parameters of the log page (logs.filters.RequestLogFilterSet,
so a URL copied from the browser gives the same rows) plus `limit` and `cursor`. Unlike the
page, an unknown parameter answers 400 naming it (console.api_errors.KnownParametersMixin): a
typo such as `modle=` must not answer unfiltered rows. `end` at or before `start` answers
400 too, and so does a cursor this endpoint did not give out (logs.api.params).

Status codes: 400 {"errors": {"param": ["message"]}} for any bad parameter (all of them at
once); 401 without a token; 403 with a token that lacks the read scope; 404 for a request id
that is unknown or another account's; 422 {"detail": ..., "code": "query_timeout"} when a
slow filter (text search, IP) ran past the statement timeout. 422 rather than 503 because
repeating the same request will not help (it needs a narrower range or another filter) and
HTTP clients retry a 503 on their own, which would repeat the expensive query.
"""

from django.templatetags.static import static
from django.urls import path
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api_auth import HasReadScope
from console.api_docs import many_param
from console.api_errors import KnownParametersMixin
from console.api_serializers import (
    DetailSerializer,
    EncryptionKeySerializer,
    FilterErrorsSerializer,
    QueryTimeoutSerializer,
)
from logs.api.params import filterset_window_errors, page_parameters, sign_cursor, unsign_cursor
from logs.api.serializers import LogPageSerializer, LogRecordSerializer, log_record
from logs.filters import RequestLogFilterSet, filter_errors
from logs.models import Status
from logs.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, decode_cursor
from logs.ranges import LOG_RANGES
from logs.selectors import filter_request_logs, get_request_log, log_page


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents console.api_auth.BearerTokenAuthentication (and lets Swagger UI send it)."""

    target_class = "console.api_auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A Meterlog API token: scope `read` for the query API, `ingest` for ingest.",
        }


def _parse_limit(raw: str | None) -> tuple[int, str | None]:
    if raw is None or raw == "":
        return DEFAULT_LIMIT, None
    try:
        limit = int(raw)
    except ValueError:
        return DEFAULT_LIMIT, f"Enter a whole number between 1 and {MAX_LIMIT}."
    if not 1 <= limit <= MAX_LIMIT:
        return DEFAULT_LIMIT, f"Must be between 1 and {MAX_LIMIT}."
    return limit, None


_MOMENT = "RFC 3339 with an offset or Z (2026-11-24T21:42:31.123456Z), a date (2026-11-24) or epoch seconds."

_AT_LEAST_ZERO = {"type": "integer", "minimum": 0}
_COST = {"type": "number", "format": "double", "minimum": 0}

LIST_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.STR, description=f"Earliest timestamp, inclusive. {_MOMENT}"),
    OpenApiParameter(
        "end",
        OpenApiTypes.STR,
        description=f"Latest timestamp, exclusive. {_MOMENT} At or before `start` (or the start of `range`): 400.",
    ),
    OpenApiParameter(
        "range",
        OpenApiTypes.STR,
        enum=list(LOG_RANGES),
        description=f"A preset window ending now ({', '.join(LOG_RANGES)}); ignored when `start` is given. "
        "Another value answers 400 listing these.",
    ),
    many_param("model", "Exact model name; repeat to match any of several."),
    many_param("status", "Request outcome; repeat to match either.", enum=Status.values),
    many_param("api_key", "The gateway's API key as stored (masked form for secrets); repeatable."),
    many_param("ip", "Client IP address (IPv4 or IPv6), exact; repeatable."),
    many_param("error_code", "Exact error code; repeatable."),
    OpenApiParameter("request_id", OpenApiTypes.STR, description="Exact request id."),
    OpenApiParameter(
        "q", OpenApiTypes.STR, description="Case-insensitive substring of the request id or the error message."
    ),
    # Raw schemas where the type alone would not say the bounds the filters apply (400 outside).
    OpenApiParameter("min_tokens", _AT_LEAST_ZERO, description="total_tokens at least this (≥ 0)."),
    OpenApiParameter("max_tokens", _AT_LEAST_ZERO, description="total_tokens at most this (≥ 0)."),
    OpenApiParameter("min_cost", _COST, description="Cost in USD at least this (≥ 0); excludes unpriced."),
    OpenApiParameter("max_cost", _COST, description="Cost in USD at most this (≥ 0); excludes unpriced."),
    OpenApiParameter("tag", OpenApiTypes.STR, description="A tag as key:value, e.g. team:search."),
    OpenApiParameter(
        "unpriced", OpenApiTypes.BOOL, description="true: only records without a cost; false: only priced ones."
    ),
    *page_parameters("Records"),
]

_ERRORS_400 = OpenApiResponse(
    FilterErrorsSerializer,
    description="A parameter is invalid or unknown, or `end` is not after `start`; errors name it.",
)
_AUTH_RESPONSES = {
    401: OpenApiResponse(DetailSerializer, description="Missing or unknown token."),
    403: OpenApiResponse(DetailSerializer, description="The token does not have the read scope."),
}
# Every read of log rows: an encrypted row without its key (logs.encryption).
_KEY_RESPONSES = {
    503: OpenApiResponse(
        EncryptionKeySerializer,
        description="Rows are stored encrypted and the server's FIELD_ENCRYPTION_KEY is missing or lacks their key.",
    ),
}


# Every FilterSet parameter (the page's) plus the page size and position.
LIST_PARAMETER_NAMES = (*RequestLogFilterSet.base_filters, "limit", "cursor")
CURSOR_SCOPE = "logs"


class LogListView(KnownParametersMixin, APIView):
    permission_classes = [HasReadScope]
    query_parameters = LIST_PARAMETER_NAMES

    @extend_schema(
        operation_id="logs_list",
        summary="List request log records, newest first",
        description=(
            "Records of the token's account, newest first (timestamp, then insertion order). "
            "Different parameters are AND-ed; a repeated parameter (model, status, api_key, ip, "
            "error_code) matches any of its values. Pages are keyset-based: pass `next_cursor` back "
            "as `cursor` with the same filters until it is null; deep pages cost what the first "
            "does. An unknown parameter answers 400 naming it (a typo must not answer unfiltered "
            "rows), as do `end` at or before `start` and a cursor that is not an unchanged "
            "`next_cursor`. A text (`q`) or IP search that runs past the server's statement timeout "
            "answers 422 with code `query_timeout`: narrow the time range or add an indexed filter "
            "(model, status, api_key, error_code) and retry."
        ),
        parameters=LIST_PARAMETERS,
        responses={
            200: LogPageSerializer,
            400: _ERRORS_400,
            **_AUTH_RESPONSES,
            **_KEY_RESPONSES,
            422: OpenApiResponse(
                QueryTimeoutSerializer,
                description="A text or IP search took too long; narrow the range or add filters.",
            ),
        },
        tags=["logs"],
    )
    def get(self, request):
        params = request.query_params
        filterset = filter_request_logs(account=request.auth.account, params=params)
        errors = {} if filterset.is_valid() else filter_errors(filterset)
        filterset_window_errors(filterset, errors)

        limit, limit_error = _parse_limit(params.get("limit"))
        if limit_error:
            errors["limit"] = [limit_error]
        cursor = params.get("cursor") or None
        if cursor is not None:
            # Checked here so a bad cursor is reported with the other parameters.
            try:
                cursor = unsign_cursor(cursor, scope=CURSOR_SCOPE)
                decode_cursor(cursor)
            except InvalidCursor as exc:
                errors["cursor"] = [str(exc)]
        if errors:
            return Response({"errors": errors}, status=status.HTTP_400_BAD_REQUEST)

        page = log_page(filterset=filterset, cursor=cursor, limit=limit)  # QueryTimeout: 422 (console.api_errors)
        next_cursor = sign_cursor(page.next_cursor, scope=CURSOR_SCOPE)
        return Response({"results": [log_record(row) for row in page.rows], "next_cursor": next_cursor})


class LogDetailView(KnownParametersMixin, APIView):
    permission_classes = [HasReadScope]
    query_parameters = ()  # none: ?anything answers 400, as on every GET endpoint

    @extend_schema(
        operation_id="logs_retrieve",
        summary="One request log record (the bare record)",
        parameters=[
            OpenApiParameter(
                "request_id",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="The record's request id; may contain slashes and colons.",
            )
        ],
        responses={
            200: LogRecordSerializer,
            400: OpenApiResponse(FilterErrorsSerializer, description="A query parameter was sent; it takes none."),
            **_AUTH_RESPONSES,
            **_KEY_RESPONSES,
            404: OpenApiResponse(DetailSerializer, description="No such request id in this token's account."),
        },
        tags=["logs"],
    )
    def get(self, request, request_id: str):
        row = get_request_log(account=request.auth.account, request_id=request_id)
        return Response(log_record(row))


def _sidecar(filename: str) -> str:
    return static(f"drf_spectacular_sidecar/swagger-ui-dist/{filename}")


class LocalSwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI with its assets from drf-spectacular-sidecar under /static/: the docs work
    offline and no third-party CDN sees who reads them. (Redoc is not offered: its template
    pulls fonts from Google.) The split view serves its start-up script as /docs/?script, a
    file of its own, so the page needs no inline script under the Content-Security-Policy."""

    title = "Meterlog API"

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        if "settings" in response.data:  # the ?script request
            # Swagger UI would otherwise send the schema's URL to validator.swagger.io for a badge.
            response.data["settings"] = self._dump({**spectacular_settings.SWAGGER_UI_SETTINGS, "validatorUrl": None})
        return response

    @staticmethod
    def _swagger_ui_resource(filename):
        return _sidecar(filename)

    @staticmethod
    def _swagger_ui_favicon():
        return _sidecar("favicon-32x32.png")


# Included under the "api" namespace by logs/api/urls.py; both pages are public (the
# schema holds no data, and every operation in it needs a token).
schema_urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", LocalSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
