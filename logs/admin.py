"""Operator views of the logs app in the Django admin.

The request log is append-only, so its admin is read-only; customers browse logs in the
console (/logs/), which is keyset-paged. The admin changelist pages with OFFSET, so it is
bounded (logs.admin_changelist): a time window, partition pruning for a chosen account, and
only the newest ROW_CAP rows reachable, counted with a LIMIT.
"""

from django.contrib import admin
from django.contrib.admin import ShowFacets
from django.contrib.admin.views.main import SEARCH_VAR
from django.urls import reverse
from django.utils import timezone
from import_export.admin import ExportMixin, ImportExportModelAdmin
from import_export.forms import ExportForm

from console.admin import ImportExportPermissions
from console.admin_audit import AuditedImportExport
from console.audit import Actor, record_event
from console.models import Account, AuditAction
from logs import encryption, gate
from logs.admin_changelist import (
    AccountFilter,
    NewestRowsPaginator,
    RequestLogChangeList,
    StatusFilter,
    TimeWindowFilter,
    is_moment,
    oldest_needed,
)
from logs.admin_resources import ApiKeyResource, ModelPriceResource, RequestLogResource
from logs.deletions import admin as deletion_admin  # noqa: F401  (deletion requests, read-only)
from logs.models import AccountModel, ApiKey, ModelPrice, PriceSource, RequestLog
from logs.prices.book import UNIT_PRICE_FIELDS
from logs.retention import admin as retention_admin  # noqa: F401  (PurgeRun, read-only)

# Attributes whose edit makes a price the operator's (so sync_prices leaves the name alone).
PRICE_FIELDS = ("model", "match", *UNIT_PRICE_FIELDS, "valid_from", "account_id")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RequestLog)
class RequestLogAdmin(ImportExportPermissions, AuditedImportExport, ExportMixin, ReadOnlyAdmin):
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
    list_filter = [TimeWindowFilter, AccountFilter, StatusFilter]
    search_fields = ["request_id"]
    search_help_text = "Exact request id (any time unless a time filter is chosen)."
    list_select_related = ["account"]
    ordering = ["-timestamp", "-id"]
    sortable_by = ()  # newest first only (RequestLogChangeList)
    show_full_result_count = False
    # Facet counts would be one COUNT per filter choice (one per account) over the log.
    show_facets = ShowFacets.NEVER
    list_per_page = 50
    paginator = NewestRowsPaginator
    import_export_change_list_template = "admin/logs/requestlog/change_list.html"
    # Field lookups from the query string beside the filters: time bounds, and equality on
    # columns that the account's indexes serve (links, bench/run_bench.py's baseline). Any
    # other (?error_message__contains=) answers 400 rather than scanning the log.
    extra_lookups = frozenset(
        {"timestamp__gte", "timestamp__lt", "model__exact", "model__in", "api_key__exact", "api_key__in"}
        | {"error_code__exact", "request_id__exact"}
    )

    def get_queryset(self, request):
        return gate.request_logs(account=gate.all_accounts())

    def get_object(self, request, object_id, from_field=None):
        # The read-only change page shows an encrypted row's fields decrypted, never the tokens.
        return encryption.reveal(super().get_object(request, object_id, from_field))

    def get_changelist(self, request, **kwargs):
        return RequestLogChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        now = timezone.now()
        # An account's rows and a request id are read through their indexes, and a range with
        # an end (?timestamp__lt=) is not the newest rows: nothing to narrow.
        given = request.GET
        narrow = not (
            given.get(AccountFilter.parameter_name) or given.get(SEARCH_VAR, "").strip() or "timestamp__lt" in given
        )
        oldest = oldest_needed(request, now)
        return self.paginator(
            queryset, per_page, orphans, allow_empty_first_page, oldest=oldest, now=now, narrow=narrow
        )

    def lookup_allowed(self, lookup, value, request):
        # A value with a NUL would reach PostgreSQL, which refuses it with an error (a 500).
        if "\x00" in (value or ""):
            return False
        if lookup.startswith("timestamp__") and not is_moment(value):
            return False  # 400, rather than the admin's "database error" page
        return lookup in self.extra_lookups or lookup in {f.parameter_name for f in self.list_filter}

    def changelist_view(self, request, extra_context=None):
        row_cap = self.paginator.row_cap
        context = {
            "log_row_cap": row_cap,
            "log_pages_cap": row_cap // self.list_per_page,
            "console_log_list": reverse("logs:list"),
            "api_log_list": reverse("api:log-list"),
        }
        return super().changelist_view(request, context | (extra_context or {}))

    def get_search_results(self, request, queryset, search_term):
        # An exact, case-sensitive match: the admin's icontains (or "=" -> iexact) wraps the
        # column in a function and scans every row of every partition.
        term = search_term.strip()
        if not term:
            return queryset, False
        if "\x00" in term:
            return queryset.none(), False  # no stored id has one (PostgreSQL refuses them)
        found = queryset.filter(request_id=term)
        if request.GET.get(AccountFilter.parameter_name) is None:
            # Index reqlog_acct_reqid leads with account_id: naming every account lets
            # PostgreSQL look the id up once per account in each partition's index (a few
            # thousand short descents) instead of reading every row of the window.
            found = found.filter(account_id__in=list(Account.objects.values_list("pk", flat=True)))
        return found, False

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
class ApiKeyAdmin(ImportExportPermissions, AuditedImportExport, ImportExportModelAdmin):
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

    def save_model(self, request, obj, form, change):
        # A name given here (the change form or the list's editable column) is in the
        # account's access log, as one given on the console's API keys page.
        old = form.initial.get("display_name", "")
        super().save_model(request, obj, form, change)
        if change and "display_name" in form.changed_data:
            details = {"identifier": obj.identifier, "name": [old, obj.display_name], "via": "admin"}
            record_event(
                account=obj.account, action=AuditAction.KEY_RENAMED, actor=Actor.from_request(request), details=details
            )


@admin.register(ModelPrice)
class ModelPriceAdmin(ImportExportPermissions, AuditedImportExport, ImportExportModelAdmin):
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
