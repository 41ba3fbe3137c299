"""Operator views of the logs app in the Django admin.

The request log is append-only, so its admin is read-only; customers browse logs in the
console (/logs/), which is keyset-paged. The admin changelist pages with OFFSET, which is
fine near the top and slow deep down, so it also never counts the whole table.
"""

from django.contrib import admin
from django.core.paginator import Paginator
from django.urls import reverse
from django.utils.functional import cached_property
from import_export.admin import ExportMixin, ImportExportModelAdmin
from import_export.forms import ExportForm

from console.admin import ImportExportPermissions
from logs.admin_resources import ApiKeyResource, ModelPriceResource, RequestLogResource
from logs.models import AccountModel, ApiKey, ModelPrice, PriceSource, RequestLog
from logs.prices.book import UNIT_PRICE_FIELDS
from logs.retention import admin as retention_admin  # noqa: F401  (PurgeRun, read-only)

# Attributes whose edit makes a price the operator's (so sync_prices leaves the name alone).
PRICE_FIELDS = ("model", "match", *UNIT_PRICE_FIELDS, "valid_from", "account_id")


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
class RequestLogAdmin(ImportExportPermissions, ExportMixin, ReadOnlyAdmin):
    """Export only (ExportMixin has no import views). The Export button carries the
    changelist's query string, and get_export_queryset() rebuilds the changelist, so an export
    is exactly the filtered / searched rows."""

    # import-export reads the queryset with .iterator(chunk_size) (RequestLogResource), but it
    # assembles the whole file in memory (a tablib Dataset) before responding, so admin exports
    # are capped. Larger exports stream with flat memory from /logs/export/ and /api/v1/export.
    EXPORT_ROW_CAP = 100_000

    resource_classes = [RequestLogResource]
    # The columns are fixed (EXPORT_FIELDS + account, as the other exports), so no per-field
    # checkboxes: the plain format-only form.
    export_form_class = ExportForm
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

    def get_export_queryset(self, request):
        return super().get_export_queryset(request).select_related("account")

    def get_valid_export_item_pks(self, request):
        # import-export's default lists every primary key of the table (to validate ids posted
        # by an "export selected" action); this admin has no such action, so no ids are valid.
        return []

    def get_data_for_export(self, request, queryset, **kwargs):
        # A LIMIT-ed count (cap + 1 rows at most), not COUNT(*) over the whole table. Refusing
        # rather than truncating: a silently cut export looks complete. export_action shows a
        # ValueError as an error message on the export form.
        over = queryset.order_by()[: self.EXPORT_ROW_CAP + 1].count() > self.EXPORT_ROW_CAP
        if over:
            raise ValueError(
                f"This selection has more than {self.EXPORT_ROW_CAP:,} rows, the limit of admin exports. "
                "Narrow the filters, or export any number of rows (streamed) from the console's log list "
                f"({reverse('logs:export')}) or the API (GET /api/v1/export with a read token)."
            )
        return super().get_data_for_export(request, queryset, **kwargs)


@admin.register(ApiKey)
class ApiKeyAdmin(ImportExportPermissions, ImportExportModelAdmin):
    # Keys are created by ingest when a gateway first sends them; an operator only names them,
    # here or by importing a file (which only updates display_name of existing keys).
    resource_classes = [ApiKeyResource]
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
class ModelPriceAdmin(ImportExportPermissions, ImportExportModelAdmin):
    resource_classes = [ModelPriceResource]
    import_creates_rows = True
    list_display = ["model", "match", *UNIT_PRICE_FIELDS, "valid_from", "account", "source", "provider"]
    list_filter = ["source", "match", ("account", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["model"]
    ordering = ["model", "-valid_from"]
    list_per_page = 100
    readonly_fields = ["source", "created_at"]
    autocomplete_fields = ["account"]
    fields = ["model", "match", *UNIT_PRICE_FIELDS, "valid_from", "account", "provider", "source", "created_at"]

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
