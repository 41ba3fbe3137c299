"""django-import-export resources for the logs app's admin (RequestLog, ApiKey, ModelPrice).

Values are written the way the rest of Meterlog writes them: timestamps UTC RFC 3339 with
`Z`, prices and costs as plain decimal strings (never floats or exponents), accounts by slug
(never by id, so a file cannot address an account by guessing numbers).
"""

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

from console.models import Account
from logs.api.serializers import format_timestamp, log_record
from logs.exports.format import EXPORT_FIELDS, JSON_FIELDS
from logs.models import ApiKey, ModelPrice, PriceSource, RequestLog
from logs.prices.book import UNIT_PRICE_FIELDS

PRICE_PLACES = Decimal("0.0000000001")  # ModelPrice's decimal_places=10


class UtcDateTimeWidget(widgets.Widget):
    """RFC 3339 in UTC (`2026-11-01T00:00:00Z`); an offset is accepted and converted."""

    def clean(self, value, row=None, **kwargs):
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            parsed = value
        else:
            try:
                parsed = datetime.fromisoformat(str(value).strip())
            except ValueError as exc:
                raise ValueError(f"{value!r} is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z)") from exc
        if parsed.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone: add Z for UTC")
        return parsed.astimezone(UTC)

    def render(self, value, obj=None, **kwargs):
        return format_timestamp(value) if value is not None else ""


class PriceWidget(widgets.Widget):
    """USD per million tokens, exact to 10 decimal places: a longer or negative value is a row
    error rather than silently rounded (Decimal(str), never float)."""

    def clean(self, value, row=None, **kwargs):
        if value in (None, ""):
            return None
        try:
            price = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not a decimal number") from exc
        if not price.is_finite() or price < 0:
            raise ValueError(f"{value!r}: a price must be a number >= 0")
        if price != price.quantize(PRICE_PLACES):
            raise ValueError(f"{value!r} has more than 10 decimal places")
        return price

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else format(value, "f")


def _cell(name: str, value) -> str:
    # As in the export's CSV (logs/exports/encoders.py): "" for null, JSON-valued fields as compact JSON text.
    if value is None:
        return ""
    if name in JSON_FIELDS:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def account_field(**kwargs) -> fields.Field:
    return fields.Field(
        attribute="account", column_name="account", widget=widgets.ForeignKeyWidget(Account, "slug"), **kwargs
    )


class RequestLogResource(resources.ModelResource):
    """Export only: the EXPORT_FIELDS columns (same values as /logs/export/ and /api/v1/export),
    then the account slug, which an operator's cross-account export needs."""

    account = account_field()

    class Meta:
        model = RequestLog
        fields = (*EXPORT_FIELDS, "account")
        export_order = (*EXPORT_FIELDS, "account")
        # Rows are read with QuerySet.iterator(chunk_size=...) (no prefetch_related on the
        # queryset), so the database sends them in batches; the tablib Dataset that
        # import-export builds still holds every row, which is why the admin caps the count.
        chunk_size = 2000

    def export_resource(self, instance, selected_fields=None, **kwargs):
        # One log_record() per row gives exactly the API / export values (timestamps with
        # microseconds and Z, cost without trailing zeros, nulls for unset text).
        record = log_record(instance)
        row = [_cell(name, record[name]) for name in EXPORT_FIELDS]
        return [*row, instance.account.slug]

    def get_export_headers(self, selected_fields=None):
        return [*EXPORT_FIELDS, "account"]


class ApiKeyResource(resources.ModelResource):
    """Keys are created by ingest; an import only renames existing keys (display_name)."""

    account = account_field()
    fingerprint = fields.Field(attribute="fingerprint", column_name="fingerprint", readonly=True)
    first_seen = fields.Field(
        attribute="first_seen", column_name="first_seen", widget=UtcDateTimeWidget(), readonly=True
    )
    last_seen = fields.Field(attribute="last_seen", column_name="last_seen", widget=UtcDateTimeWidget(), readonly=True)

    class Meta:
        model = ApiKey
        fields = ("account", "identifier", "display_name", "fingerprint", "first_seen", "last_seen")
        export_order = fields
        import_id_fields = ("account", "identifier")
        skip_unchanged = True
        report_skipped = True

    def get_instance(self, instance_loader, row):
        # Masked secrets can share an identifier (sk-…abcd); the exported fingerprint, when
        # present, picks the key, otherwise an ambiguous identifier is a row error.
        account = Account.objects.filter(slug=row.get("account") or "").first()
        if account is None:
            raise ValidationError({"account": "an existing account slug is required"})
        keys = ApiKey.objects.filter(account=account, identifier=row.get("identifier") or "")
        if row.get("fingerprint"):
            keys = keys.filter(fingerprint=row["fingerprint"])
        found = list(keys[:2])
        if len(found) > 1:
            raise ValidationError({"identifier": "several keys share this identifier: add the fingerprint column"})
        if not found:
            raise ValidationError({"identifier": "no such key in this account (keys are created by ingest)"})
        return found[0]


class ModelPriceResource(resources.ModelResource):
    """Imported prices are the operator's (source=operator), like prices edited in the admin;
    rows are identified by (model, match, valid_from, account), so a re-import is a no-op."""

    account = account_field()
    input_per_mtok = fields.Field(attribute="input_per_mtok", column_name="input_per_mtok", widget=PriceWidget())
    output_per_mtok = fields.Field(attribute="output_per_mtok", column_name="output_per_mtok", widget=PriceWidget())
    cached_input_per_mtok = fields.Field(
        attribute="cached_input_per_mtok", column_name="cached_input_per_mtok", widget=PriceWidget()
    )
    valid_from = fields.Field(attribute="valid_from", column_name="valid_from", widget=UtcDateTimeWidget())
    # Exported for information; never read from a file (an import cannot claim genai-prices).
    source = fields.Field(attribute="source", column_name="source", readonly=True)

    class Meta:
        model = ModelPrice
        fields = ("model", "match", "provider", *UNIT_PRICE_FIELDS, "valid_from", "account", "source")
        export_order = fields
        import_id_fields = ("model", "match", "valid_from", "account")
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = True  # full_clean(): match choices, required prices

    def before_save_instance(self, instance, row, **kwargs):
        # Only rows that are new or changed reach here (skip_unchanged): an unchanged
        # genai-prices row stays genai-prices, as with an unchanged save in the admin.
        instance.source = PriceSource.OPERATOR
