"""Operator views of the logs app in the Django admin.

The request log is append-only, so its admin is read-only; customers browse logs in the
console (/logs/), which is keyset-paged. The admin changelist pages with OFFSET, which is
fine near the top and slow deep down, so it also never counts the whole table.
"""

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property

from logs.models import AccountModel, ApiKey, ModelPrice, PriceSource, RequestLog

# Attributes whose edit makes a price the operator's (so sync_prices leaves the name alone).
PRICE_FIELDS = (
    "model",
    "match",
    "input_per_mtok",
    "output_per_mtok",
    "cached_input_per_mtok",
    "valid_from",
    "account_id",
)


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP rows: an unbounded COUNT(*) over tens of millions of log rows
    takes seconds. Past the cap the admin shows the cap as the total and stops paging there;
    deeper browsing belongs to the console's keyset-paged list or the query API."""

    COUNT_CAP = 100_000

    @cached_property
    def count(self):
        return self.object_list.order_by()[: self.COUNT_CAP].count()


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdmin):
    list_display = [
        "timestamp",
        "account",
        "model",
        "status",
        "total_tokens",
        "cost",
        "api_key",
        "request_id",
    ]
    list_filter = ["status"]
    search_fields = ["request_id"]
    list_select_related = ["account"]
    ordering = ["-timestamp", "-id"]
    show_full_result_count = False
    list_per_page = 50
    paginator = CappedCountPaginator

    def get_search_results(self, request, queryset, search_term):
        # An exact, case-sensitive match: the admin's icontains (or "=" -> iexact) wraps the
        # column in a function and scans every row of every partition.
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(request_id=term), False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    # Keys are created by ingest when a gateway first sends them; an operator only names them.
    list_display = ["identifier", "display_name", "account", "first_seen", "last_seen"]
    list_editable = ["display_name"]
    list_filter = [("account", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["identifier", "display_name"]
    fields = ["account", "identifier", "display_name", "fingerprint", "first_seen", "last_seen"]
    readonly_fields = ["account", "identifier", "fingerprint", "first_seen", "last_seen"]

    def has_add_permission(self, request):
        return False


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = [
        "model",
        "match",
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "valid_from",
        "account",
        "source",
        "provider",
    ]
    list_filter = ["source", "match", ("account", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["model"]
    ordering = ["model", "-valid_from"]
    list_per_page = 100
    readonly_fields = ["source", "created_at"]
    autocomplete_fields = ["account"]
    fields = [
        "model",
        "match",
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "valid_from",
        "account",
        "provider",
        "source",
        "created_at",
    ]

    def save_model(self, request, obj, form, change):
        # Whatever an operator writes is the operator's: a new row, or a genai-prices row
        # whose price was edited, is never overwritten or outdated by sync_prices.
        # Compared with the stored row rather than form.changed_data: valid_from has a
        # callable default, so the form reports it changed whenever the hidden initial
        # value is missing from the POST.
        stored = ModelPrice.objects.filter(pk=obj.pk).values(*PRICE_FIELDS).first() if change else None
        if stored is None or any(stored[name] != getattr(obj, name) for name in PRICE_FIELDS):
            obj.source = PriceSource.OPERATOR
        super().save_model(request, obj, form, change)


@admin.register(AccountModel)
class AccountModelAdmin(ReadOnlyAdmin):
    list_display = ["model", "account", "first_seen", "last_seen"]
    list_filter = [("account", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["model"]
