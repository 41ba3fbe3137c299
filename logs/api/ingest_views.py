"""The gateway's side of the API: POST batches of usage records.

Thin views: the body is decoded by logs.ingest.parsing (limits, gzip, JSON/NDJSON) and
stored by logs.ingest.services.ingest_records. The serializers below only document the
format for the OpenAPI schema; records are validated in plain Python for speed.

Unlike the GET endpoints (console.api_errors.KnownParametersMixin), ingest ignores its query
string: it reads the body only, so a stray parameter cannot change what is stored, and a 400
for one (say a gateway's callback URL with ?source=litellm) would drop a batch of usage records.
"""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api_auth import BearerTokenAuthentication, HasIngestScope
from logs.ingest.bounds import BOUNDS, IntBound
from logs.ingest.litellm import litellm_to_record
from logs.ingest.parsing import MAX_GZIP_MEMBERS, MAX_RECORDS, BodyError, parse_request_body
from logs.ingest.services import ingest_records

_MAX = {name: bound.maximum for name, bound in BOUNDS.items() if isinstance(bound, IntBound)}


class IngestRecordSerializer(serializers.Serializer):
    request_id = serializers.CharField(max_length=255, help_text="Unique per account; a re-sent id is a duplicate.")
    timestamp = serializers.CharField(help_text="RFC 3339 with offset or Z, or epoch seconds (a number).")
    model = serializers.CharField(max_length=255)
    status = serializers.ChoiceField(choices=["success", "error"])
    # Maxima as validation applies them: each column's, read from the model (logs.ingest.bounds).
    prompt_tokens = serializers.IntegerField(min_value=0, max_value=_MAX["prompt_tokens"], required=False, default=0)
    completion_tokens = serializers.IntegerField(
        min_value=0, max_value=_MAX["completion_tokens"], required=False, default=0
    )
    total_tokens = serializers.IntegerField(
        min_value=0, max_value=_MAX["total_tokens"], required=False, help_text="If sent, must equal the sum."
    )
    cached_tokens = serializers.IntegerField(
        min_value=0, max_value=_MAX["cached_tokens"], required=False, allow_null=True
    )
    reasoning_tokens = serializers.IntegerField(
        min_value=0, max_value=_MAX["reasoning_tokens"], required=False, allow_null=True
    )
    cost = serializers.DecimalField(
        max_digits=24,
        decimal_places=12,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="USD, a number or a decimal string, under 10^12 once rounded to 12 places. "
        "Absent: priced from the price list (null if no price).",
    )
    api_key = serializers.CharField(
        max_length=255,
        required=False,
        help_text="The gateway's key name; provider secrets (sk-, gsk_, hf_, AIza, xai-, long random tokens; "
        "with or without 'Bearer ') are stored masked.",
    )
    ip_address = serializers.IPAddressField(required=False, allow_null=True)
    user_agent = serializers.CharField(max_length=512, required=False)
    latency_ms = serializers.IntegerField(min_value=0, max_value=_MAX["latency_ms"], required=False, allow_null=True)
    request_params = serializers.DictField(
        required=False, help_text="At most 16,384 bytes; prompt keys (messages, prompt, input, ...) are removed."
    )
    tags = serializers.DictField(child=serializers.CharField(), required=False)
    error_code = serializers.CharField(max_length=64, required=False)
    error_message = serializers.CharField(required=False)
    error_details = serializers.JSONField(required=False, allow_null=True)


class LiteLLMPayloadSerializer(serializers.Serializer):
    """The StandardLoggingPayload fields Meterlog reads; everything else is ignored."""

    id = serializers.CharField(help_text="-> request_id")
    startTime = serializers.FloatField(
        help_text="epoch seconds -> timestamp; endTime - startTime -> latency_ms (left empty when negative, "
        "not finite or past the column)"
    )
    endTime = serializers.FloatField()
    model_group = serializers.CharField(required=False, help_text="-> model (else `model`)")
    status = serializers.ChoiceField(choices=["success", "failure"], help_text="-> success / error")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    response_cost = serializers.FloatField(help_text="-> cost (0.0 stays 0)")
    metadata = serializers.DictField(help_text="user_api_key_alias / user_api_key_hash -> api_key, user_agent")
    model_parameters = serializers.DictField(required=False, help_text="-> request_params")
    error_information = serializers.DictField(required=False, help_text="error_code, error_message, error_class")


class IngestRejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the record in the batch (NDJSON: non-blank line).")
    request_id = serializers.CharField(allow_null=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = IngestRejectedSerializer(many=True)


class IngestProblemSerializer(serializers.Serializer):
    detail = serializers.CharField()


_RESPONSES = {
    200: IngestResultSerializer,
    400: OpenApiResponse(IngestProblemSerializer, description="Body is not JSON/NDJSON, or not a list."),
    401: OpenApiResponse(IngestProblemSerializer, description="Missing or unknown token."),
    403: OpenApiResponse(IngestProblemSerializer, description="Token without the ingest scope."),
    411: OpenApiResponse(IngestProblemSerializer, description="Chunked body on a server that cannot read one."),
    413: OpenApiResponse(
        IngestProblemSerializer,
        description=f"More than {MAX_RECORDS:,} records, 20 MB (decompressed) or {MAX_GZIP_MEMBERS:,} gzip members.",
    ),
    415: OpenApiResponse(IngestProblemSerializer, description="Content-Encoding other than gzip."),
    503: OpenApiResponse(
        IngestProblemSerializer,
        description="The account stores logs encrypted and the server's FIELD_ENCRYPTION_KEY is missing or "
        "invalid: nothing of the batch is stored.",
    ),
}


class _BaseIngestView(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HasIngestScope]
    # No DRF parsing: parse_request_body reads the raw stream under its own size limits.
    parser_classes = []
    lenient = False
    source = "api"

    def to_record(self, item):
        return item

    def post(self, request):
        try:
            items = parse_request_body(request, lenient=self.lenient)
        except BodyError as exc:
            return Response({"detail": exc.message}, status=exc.status)
        records = [self.to_record(item) for item in items]
        result = ingest_records(account=request.auth.account, records=records, source=self.source)
        return Response(result.as_dict())


class IngestView(_BaseIngestView):
    """POST /api/v1/ingest: a JSON array or NDJSON of records in Meterlog's format."""

    @extend_schema(
        operation_id="ingest",
        summary="Ingest usage records",
        description=(
            "A JSON array of records, or NDJSON with `Content-Type: application/x-ndjson`; "
            "`Content-Encoding: gzip` accepted. At most 10,000 records and 20 MB decompressed. "
            "Valid records are stored even when others are rejected; a request_id already stored "
            "(or repeated in the batch) counts as a duplicate. An NDJSON line that is not JSON is "
            "rejected by its index; only a body with no valid line at all is a 400. Unknown fields "
            "are ignored."
        ),
        request={"application/json": IngestRecordSerializer(many=True), "application/x-ndjson": IngestRecordSerializer},
        responses=_RESPONSES,
        examples=[
            OpenApiExample(
                "One record",
                request_only=True,
                value={
                    "request_id": "req-123",
                    "timestamp": "2026-11-24T21:42:31.123456Z",
                    "model": "gpt-4o-mini",
                    "status": "success",
                    "prompt_tokens": 812,
                    "completion_tokens": 64,
                    "api_key": "team-search",
                    "latency_ms": 930,
                    "tags": {"env": "prod"},
                },
            )
        ],
        tags=["ingest"],
    )
    def post(self, request):
        return super().post(request)


class LiteLLMIngestView(_BaseIngestView):
    """POST /api/v1/ingest/litellm: LiteLLM's generic_api logger, pointed at Meterlog."""

    lenient = True
    source = "litellm"

    def to_record(self, item):
        return litellm_to_record(item)

    @extend_schema(
        operation_id="ingest_litellm",
        summary="Ingest LiteLLM generic_api payloads",
        description=(
            "Configure LiteLLM's `generic_api` callback with this endpoint and an ingest token "
            "(`Authorization: Bearer ...`). Takes an array (log_format json_array), NDJSON, or a single "
            "object of StandardLoggingPayload. `messages` and `response` are never stored; "
            "`response_cost` is kept as the cost (0.0 stays 0). Same limits and answer as /api/v1/ingest."
        ),
        request={
            "application/json": LiteLLMPayloadSerializer(many=True),
            "application/x-ndjson": LiteLLMPayloadSerializer,
        },
        responses=_RESPONSES,
        tags=["ingest"],
    )
    def post(self, request):
        return super().post(request)
