"""GET /api/v1/usage: requests, tokens and cost per time bucket, shaped like OpenAI's usage API.

A thin view over analytics.usage (the one place usage queries live): the token's account
only, parameters parsed by analytics.api_serializers. Status codes follow the log API:
400 {"errors": {"param": ["message"]}} naming every bad parameter (an unknown one, checked
first by console.api_errors.KnownParametersMixin, and `end` not after `start`); 401 / 403
from the token;
422 {"detail", "code": "query_timeout"} when the part read from raw rows runs past the
statement timeout.
"""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import usage as engine
from analytics.api_serializers import (
    DEFAULT_BUCKET,
    LOG_ONLY_FILTERS,
    PARAMETERS,
    RANGE_LIMITS,
    UsagePageSerializer,
    parse_usage_params,
    usage_page,
)
from console.api_auth import HasReadScope
from console.api_docs import many_param
from console.api_errors import KnownParametersMixin
from console.api_serializers import DetailSerializer, FilterErrorsSerializer, QueryTimeoutSerializer
from logs.models import Status
from logs.ranges import LOG_RANGES

_MOMENT = (
    "RFC 3339 (2026-11-20T00:00:00+05:30 or ...Z), a date (2026-11-20: local midnight in `timezone`), "
    "or epoch seconds; a date-time without an offset is read in `timezone`."
)


_LIMITS = ", ".join(f"{name} ≤ {limit.days} days" for name, limit in RANGE_LIMITS.items())

USAGE_PARAMETERS = [
    OpenApiParameter(
        "start",
        OpenApiTypes.STR,
        description=f"Inclusive. {_MOMENT} Default: local midnight six days before the day holding `end` "
        "(the last 7 local days).",
    ),
    OpenApiParameter(
        "end", OpenApiTypes.STR, description=f"Exclusive. {_MOMENT} Default: now. At or before `start`: 400."
    ),
    OpenApiParameter(
        "range",
        OpenApiTypes.STR,
        enum=list(LOG_RANGES),
        description=f"A preset window ending now ({', '.join(LOG_RANGES)}), as on the log list; ignored when `start` "
        "is given. Another value answers 400 listing these.",
    ),
    OpenApiParameter(
        "bucket",
        OpenApiTypes.STR,
        enum=list(engine.BUCKETS),
        description=f"Bucket width (default {DEFAULT_BUCKET}); days, weeks (from Monday) and months start at local "
        f"midnight in `timezone`. Longest range per bucket: {_LIMITS}.",
    ),
    many_param(
        "group_by",
        "Split each bucket's results by these fields (comma list or repeated); only these keys appear in results.",
        enum=list(engine.GROUPS),
    ),
    OpenApiParameter(
        "timezone",
        OpenApiTypes.STR,
        description="IANA zone of the bucket boundaries and of plain dates, e.g. Asia/Kolkata. "
        "Default: the account's reporting zone.",
    ),
    many_param("model", "Exact model name; repeat or comma-separate to match any of several."),
    many_param("api_key", "The gateway's API key as stored (masked form for secrets); repeatable."),
    many_param("status", "Request outcome; repeatable.", enum=Status.values),
    many_param("error_code", "Exact error code; repeatable."),
]

_NOT_HERE = ", ".join(LOG_ONLY_FILTERS)


class UsageView(KnownParametersMixin, APIView):
    permission_classes = [HasReadScope]
    # The log-only filters are known names: they answer their own 400 (aggregates cannot apply them).
    query_parameters = PARAMETERS

    @extend_schema(
        operation_id="usage_retrieve",
        summary="Usage per time bucket: requests, errors, tokens and cost",
        description=(
            "Figures of the token's account for [start, end), one item per bucket, every bucket of the range "
            "listed (empty ones with `results: []`); the first and last bucket are cut to the range, so their "
            "`start` / `end` say exactly what they count. Read from the rollups kept at ingest: days whose raw "
            "rows were purged by retention still count (hourly buckets, and days in another zone than the "
            "account's, that filter or group by error_code or by two fields are counted from raw rows and so "
            "cover retained rows only). `cost` is the priced requests' cost, a decimal string as a log record's "
            '("4.12731"), and null when none of the group\'s requests is priced; `unpriced_requests` counts the '
            "others (0 included). Bucket edges, and the page's `start` / `end`, keep the offset of `timezone` "
            "(2026-11-20T00:00:00+05:30) on purpose: a bucket is a local day, week or month. Record timestamps "
            "elsewhere in the API are UTC with Z. "
            f"The log list's other filters ({_NOT_HERE}) answer 400: aggregates cannot apply them; any other "
            "unknown parameter answers 400 naming it."
        ),
        parameters=USAGE_PARAMETERS,
        responses={
            200: UsagePageSerializer,
            400: OpenApiResponse(
                FilterErrorsSerializer,
                description="A parameter is invalid or unknown, or `end` is not after `start`; errors name it.",
            ),
            401: OpenApiResponse(DetailSerializer, description="Missing or unknown token."),
            403: OpenApiResponse(DetailSerializer, description="The token does not have the read scope."),
            422: OpenApiResponse(QueryTimeoutSerializer, description="The raw-row part took too long."),
        },
        tags=["usage"],
    )
    def get(self, request):
        query, errors = parse_usage_params(request.query_params, account=request.auth.account, now=timezone.now())
        if errors:
            return Response({"errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        try:
            buckets = engine.usage(query)
        except engine.UsageError as exc:
            return Response({"errors": {exc.param: [exc.message]}}, status=status.HTTP_400_BAD_REQUEST)
        # A QueryTimeout answers 422 (console.api_errors).
        return Response(usage_page(query, buckets))
