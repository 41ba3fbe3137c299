"""The one FilterSet behind the log page, the query API, exports and the totals bar.

Parameters are the API's names, so a URL copied from the browser reproduces the same
set through the API. Each filter maps onto an index of RequestLog (see its Meta). Range
presets come from logs.ranges; the analytics page and usage API name their filters the
same way (analytics.usage.FILTER_COLUMNS).
"""

import ipaddress
from datetime import UTC, datetime
from decimal import Decimal

import django_filters
from django import forms
from django.db import connections
from django.db.models import Q, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from console.params import StorableTextForm, moment_problem
from logs.models import RequestLog, Status
from logs.ranges import LOG_RANGES, choices, time_bounds


class MomentField(forms.Field):
    """RFC 3339 with an offset or Z (the API's form), a naive date-time in the viewer's
    zone (the page's datetime-local inputs), a plain date, or epoch seconds."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        value = value.strip()
        try:
            if value.replace(".", "", 1).isdigit():
                parsed = datetime.fromtimestamp(float(value), tz=UTC)
            else:
                parsed = parse_datetime(value.replace(" ", "T", 1) if "T" not in value else value)
            if parsed is None and len(value) == 10:
                parsed = parse_datetime(value + "T00:00:00")
        except (ValueError, OverflowError, OSError):
            parsed = None
        if parsed is None:
            raise forms.ValidationError("Enter a date-time such as 2026-11-24T21:42:31Z.", code="invalid")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
        problem = moment_problem(parsed)
        if problem:
            raise forms.ValidationError(problem, code="out_of_range")
        return parsed


class MomentFilter(django_filters.Filter):
    field_class = MomentField


class ListField(forms.Field):
    """A repeatable parameter (?model=a&model=b): values are OR-ed."""

    widget = forms.SelectMultiple

    def __init__(self, *, item_validator=None, **kwargs):
        self.item_validator = item_validator
        super().__init__(**kwargs)

    def to_python(self, value):
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        items = [str(v).strip() for v in value if str(v).strip() != ""]
        if len(items) > 50:
            raise forms.ValidationError("At most 50 values.")
        if self.item_validator:
            items = [self.item_validator(item) for item in items]
        return items


def _status_value(value: str) -> str:
    if value not in Status.values:
        raise forms.ValidationError(f"Unknown status {value!r}; use one of: {', '.join(Status.values)}.")
    return value


def _ip_value(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise forms.ValidationError(f"{value!r} is not an IP address.") from exc


class ListFilter(django_filters.Filter):
    field_class = ListField

    def filter(self, qs, value):
        if not value:
            return qs
        if len(value) == 1:
            return qs.filter(**{self.field_name: value[0]})
        return qs.filter(**{f"{self.field_name}__in": value})


class TagField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        key, sep, tag_value = value.partition(":")
        if not sep or not key:
            raise forms.ValidationError("Use key:value, e.g. tag=team:search.")
        return key, tag_value


class TagFilter(django_filters.Filter):
    field_class = TagField

    def filter(self, qs, value):
        if not value:
            return qs
        key, tag_value = value
        if connections[qs.db].vendor == "postgresql":
            # jsonb containment: one operator PostgreSQL evaluates without extracting keys.
            return qs.filter(tags__contains={key: tag_value})
        # Cast: compared as text; a bare KeyTextTransform takes JSON's exact lookup on SQLite,
        # which wraps the value in JSON_EXTRACT and fails with "malformed JSON".
        return qs.alias(_tag_value=Cast(KeyTextTransform(key, "tags"), TextField())).filter(_tag_value=tag_value)


class RequestLogFilterSet(django_filters.FilterSet):
    range = django_filters.ChoiceFilter(
        choices=choices(LOG_RANGES),
        method="filter_range",
        label="Time range",
    )
    start = MomentFilter(field_name="timestamp", lookup_expr="gte", label="From (inclusive)")
    end = MomentFilter(field_name="timestamp", lookup_expr="lt", label="To (exclusive)")
    model = ListFilter(field_name="model")
    status = ListFilter(field_name="status", item_validator=_status_value)
    api_key = ListFilter(field_name="api_key", label="API key")
    ip = ListFilter(field_name="ip_address", item_validator=_ip_value, label="IP")
    error_code = ListFilter(field_name="error_code")
    request_id = django_filters.CharFilter(field_name="request_id", max_length=255)
    q = django_filters.CharFilter(method="filter_search", max_length=200, label="Search request id or error")
    min_tokens = django_filters.NumberFilter(field_name="total_tokens", lookup_expr="gte", min_value=0)
    max_tokens = django_filters.NumberFilter(field_name="total_tokens", lookup_expr="lte", min_value=0)
    min_cost = django_filters.NumberFilter(field_name="cost", lookup_expr="gte", min_value=Decimal(0))
    max_cost = django_filters.NumberFilter(field_name="cost", lookup_expr="lte", min_value=Decimal(0))
    tag = TagFilter(label="Tag (key:value)")
    unpriced = django_filters.BooleanFilter(field_name="cost", lookup_expr="isnull", label="Unpriced only")

    class Meta:
        model = RequestLog
        fields = []
        # Every parameter's raw values are refused when PostgreSQL cannot take them (NUL, ...).
        form = StorableTextForm

    def filter_range(self, queryset, name, value):
        # An explicit start is the `start` filter's (it wins over the preset).
        if not value or self.form.cleaned_data.get("start"):
            return queryset
        start, _ = time_bounds(value)
        return queryset.filter(timestamp__gte=start)

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(request_id__icontains=value) | Q(error_message__icontains=value))


def filter_errors(filterset: RequestLogFilterSet) -> dict[str, list[str]]:
    """{parameter: [messages]} for a 400 answer or the filter bar."""
    return {field: [str(message) for message in messages] for field, messages in filterset.form.errors.items()}
