"""GET /api/v1/export: the filtered log as one streamed CSV, JSON or NDJSON file (logs.exports).

Takes the log list's filters (the same FilterSet) plus `format` (csv, the default, json,
ndjson), `compress=gzip`, `split=month` (a zip of one gzip file per calendar month,
logs.exports.zips) and `csv_safe=1` (formula-like CSV cells prefixed with ', CSV only).
The API always streams, whatever the size: a client that wants pieces asks for them by
`start`/`end`. 400 {"errors": {param: [messages]}} names every bad parameter (an unknown
one too, and `end` at or before `start`, as /api/v1/logs);
401 without a token, 403 with a token that lacks the read scope; 422 query_timeout when the
first chunk of a slow filter runs past the statement timeout (as /api/v1/logs).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api_auth import HasReadScope
from console.api_errors import KnownParametersMixin
from console.api_serializers import QueryTimeoutSerializer
from console.login_throttle import client_ip
from logs import exports
from logs.api.params import filterset_window_errors
from logs.api.query_views import _AUTH_RESPONSES, _ERRORS_400, _KEY_RESPONSES, LIST_PARAMETERS
from logs.api.serializers import LogRecordSerializer
from logs.exports.request import GZIP_CONTENT_TYPE, ZIP_CONTENT_TYPE
from logs.filters import RequestLogFilterSet
from logs.models import ExportFormat
from logs.selectors import filter_request_logs

EXPORT_PARAMETERS = [
    OpenApiParameter(
        "format", OpenApiTypes.STR, enum=ExportFormat.values, description="File format; csv when left out."
    ),
    OpenApiParameter(
        "compress", OpenApiTypes.STR, enum=list(exports.COMPRESSIONS), description="gzip: the body is a .gz file."
    ),
    OpenApiParameter(
        "split",
        OpenApiTypes.STR,
        enum=list(exports.SPLITS),
        description=(
            "month: the body is a zip (application/zip) with one gzip file per calendar month (UTC), "
            "named meterlog-<account>-YYYY-MM.<format>.gz, oldest month first."
        ),
    ),
    OpenApiParameter(
        "csv_safe",
        OpenApiTypes.STR,
        enum=list(exports.CSV_SAFE_VALUES),
        description=(
            "1 (or true): safe for spreadsheets. CSV text cells starting with = + - @, a tab or a carriage "
            "return get a leading ' so a spreadsheet does not evaluate them as formulas (OWASP CSV "
            "injection); numbers, timestamps, IP addresses and JSON cells are never changed. Such a file "
            "no longer imports back unchanged (the ' stays in the values). Off (0, false or left out) by "
            "default. CSV only: with format=json or ndjson, csv_safe=1 is refused with 400."
        ),
    ),
    *[p for p in LIST_PARAMETERS if p.name not in ("limit", "cursor")],
]


class ExportView(KnownParametersMixin, APIView):
    permission_classes = [HasReadScope]
    # The log list's filters (no paging: the export streams every page) and the file's options.
    query_parameters = (*RequestLogFilterSet.base_filters, "format", "compress", "split", "csv_safe")

    def perform_content_negotiation(self, request, force=False):
        # `format` is our parameter, not DRF's renderer override (which would 404 on csv):
        # errors are always rendered as JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="logs_export",
        summary="Export the filtered log as one file (streamed)",
        description=(
            "Every record matching the filters, newest first, as CSV (header row: the field "
            "names in their documented order), a JSON array or NDJSON; with compress=gzip the "
            "body is a gzip file (application/gzip, name ending .gz). Streamed in keyset chunks, "
            "so any size starts at once. Timestamps UTC RFC 3339 with microseconds; cost a "
            "decimal string, empty (CSV) or null (JSON) when unpriced. "
            "With split=month the body is a zip holding one gzip file per calendar month (UTC). "
            "With csv_safe=1 (CSV only) formula-like text cells are prefixed with ' for spreadsheets. "
            "To fetch a large range in pieces, make several requests with consecutive start/end."
        ),
        parameters=EXPORT_PARAMETERS,
        responses={
            # One content type per format / compress / split (logs.exports.request.content_type).
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="format=csv (the default)."),
            (200, "application/json"): OpenApiResponse(
                LogRecordSerializer(many=True), description="format=json: an array of records."
            ),
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="format=ndjson: one record (a JSON object) per line."
            ),
            (200, GZIP_CONTENT_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="compress=gzip."),
            (200, ZIP_CONTENT_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="split=month."),
            400: _ERRORS_400,
            **_AUTH_RESPONSES,
            **_KEY_RESPONSES,
            422: OpenApiResponse(QueryTimeoutSerializer, description="The filter took too long; narrow it."),
        },
        tags=["logs"],
    )
    def get(self, request):
        account = request.auth.account
        export, errors = exports.parse_export_request(account=account, params=request.query_params)
        if export:
            filterset = export.filterset
        else:  # checked again (form validation only, no query) to report the window with the other errors
            filterset = filter_request_logs(account=account, params=request.query_params)
            filterset.is_valid()
        filterset_window_errors(filterset, errors)
        if errors:
            return Response({"errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        body = exports.start_export(
            account=account,
            export=export,
            params=request.query_params,
            token_hint=request.auth.hint,
            ip=client_ip(request),
        )  # a QueryTimeout answers 422 (console.api_errors)
        return exports.export_response(body, account=account, export=export)
