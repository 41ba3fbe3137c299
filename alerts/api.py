"""GET /api/v1/alerts/events: the token's account's alert events, newest first.

Parameters: `start` / `end` (the event time, [start, end); RFC 3339, a date (local midnight
in the account's zone) or epoch seconds, as the usage API reads them), `kind`, `state`,
`limit` and `cursor` (keyset pages on (created_at, id), as the log list; signed, so an
edited cursor or one of the log list answers 400). Status codes as the log API:
400 {"errors": {"param": ["message"]}} naming every bad parameter (an unknown one too, and
`end` not after `start`), 401 / 403 from the token."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import AlertEvent, EventState, RuleKind
from alerts.selectors import event_page
from analytics.api_serializers import _moment as parse_moment  # the usage API's reading of a moment
from console.api_auth import HasReadScope
from console.api_errors import KnownParametersMixin
from console.api_serializers import DetailSerializer, FilterErrorsSerializer
from logs.api.params import END_BEFORE_START, page_parameters, sign_cursor, unsign_cursor
from logs.api.serializers import format_cost, format_timestamp
from logs.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, decode_cursor


def event_record(event: AlertEvent) -> dict:
    return {
        "id": event.pk,
        "rule_id": event.rule_id,
        "kind": event.kind,
        "state": event.state,
        "value": format_cost(event.value),
        "threshold": format_cost(event.threshold),
        "model": event.model or None,
        "api_key": event.api_key or None,
        "window_start": format_timestamp(event.window_start),
        "window_end": format_timestamp(event.window_end),
        "time": format_timestamp(event.created_at),
        "message": event.message,
        "notified": event.notified,
    }


class AlertEventSerializer(serializers.Serializer):
    """Schema of one event; the work is `event_record()`."""

    id = serializers.IntegerField()
    rule_id = serializers.IntegerField(allow_null=True, help_text="null once the rule was deleted.")
    kind = serializers.ChoiceField(choices=RuleKind.choices)
    state = serializers.ChoiceField(choices=EventState.choices)
    value = serializers.CharField(
        allow_null=True,
        help_text="The figure judged, a decimal string: USD for cost_anomaly and budget, a fraction for error_rate "
        '("0.25"), tokens for token_spike; null when there was nothing to judge.',
    )
    threshold = serializers.CharField(allow_null=True, help_text="The limit it was judged against, same unit.")
    model = serializers.CharField(allow_null=True, help_text="The rule's model scope; null: every model.")
    api_key = serializers.CharField(allow_null=True, help_text="The rule's API key scope; null: every key.")
    window_start = serializers.DateTimeField(help_text="UTC start of the time the figure covers.")
    window_end = serializers.DateTimeField(help_text="UTC end of the time the figure covers.")
    time = serializers.DateTimeField(help_text="When the evaluation recorded the event (UTC, Z).")
    message = serializers.CharField()
    notified = serializers.BooleanField(help_text="Whether the event was sent to the rule's channels.")


class AlertEventPageSerializer(serializers.Serializer):
    results = AlertEventSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next (older) page.")


_MOMENT = "RFC 3339 (…Z or with an offset), a date (local midnight in the account's zone) or epoch seconds."
PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.STR, description=f"Events at or after this time. {_MOMENT}"),
    OpenApiParameter(
        "end", OpenApiTypes.STR, description=f"Events before this time. {_MOMENT} At or before `start`: 400."
    ),
    OpenApiParameter("kind", OpenApiTypes.STR, enum=RuleKind.values, description="Only this rule kind."),
    OpenApiParameter("state", OpenApiTypes.STR, enum=EventState.values, description="Only fired or recovered."),
    *page_parameters("Events"),
]
PARAMETER_NAMES = tuple(parameter.name for parameter in PARAMETERS)
CURSOR_SCOPE = "alert_events"


def parse_event_params(params, *, account) -> tuple[dict, dict[str, list[str]]]:
    """The list's filters from the query string, and the errors by parameter name."""
    found, errors = {}, {}
    for name in ("start", "end"):
        raw = params.get(name)
        if raw:
            try:
                found[name] = parse_moment(raw, account.zone)
            except ValueError as exc:
                errors[name] = [str(exc)]
    if "start" in found and "end" in found and found["end"] <= found["start"]:
        errors["end"] = [END_BEFORE_START]
    for name, choices in (("kind", RuleKind.values), ("state", EventState.values)):
        raw = params.get(name)
        if raw:
            if raw in choices:
                found[name] = raw
            else:
                errors[name] = [f"Must be one of {', '.join(choices)}."]
    raw = params.get("limit")
    found["limit"] = DEFAULT_LIMIT
    if raw:
        try:
            found["limit"] = int(raw)
            if not 1 <= found["limit"] <= MAX_LIMIT:
                raise ValueError
        except ValueError:
            errors["limit"] = [f"Enter a whole number between 1 and {MAX_LIMIT}."]
    raw = params.get("cursor")
    if raw:
        try:
            found["cursor"] = decode_cursor(unsign_cursor(raw, scope=CURSOR_SCOPE))
        except InvalidCursor as exc:
            errors["cursor"] = [str(exc)]
    return found, errors


class AlertEventsView(KnownParametersMixin, APIView):
    permission_classes = [HasReadScope]
    query_parameters = PARAMETER_NAMES

    @extend_schema(
        operation_id="alert_events_list",
        summary="Alert events (rules that fired or recovered), newest first",
        description=(
            "Events of the token's account: each time one of its alert rules fired or recovered, with the "
            "figure and limit judged, the rule's scope and the time the figure covers. Times are UTC with Z."
        ),
        parameters=PARAMETERS,
        responses={
            200: AlertEventPageSerializer,
            400: OpenApiResponse(
                FilterErrorsSerializer,
                description="A parameter is invalid or unknown, or `end` is not after `start`; errors name it.",
            ),
            401: OpenApiResponse(DetailSerializer, description="Missing or unknown token."),
            403: OpenApiResponse(DetailSerializer, description="The token does not have the read scope."),
        },
        tags=["alerts"],
    )
    def get(self, request):
        account = request.auth.account
        filters, errors = parse_event_params(request.query_params, account=account)
        if errors:
            return Response({"errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        rows, next_cursor = event_page(account=account, filters=filters)
        next_cursor = sign_cursor(next_cursor, scope=CURSOR_SCOPE)
        return Response({"results": [event_record(row) for row in rows], "next_cursor": next_cursor})
