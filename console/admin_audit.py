"""Django admin exports and imports (django-import-export) in the accounts' access logs.

An operator's admin export or import can hold several accounts' rows: each account whose rows
are in the file gets one event (with its own row count), so every customer sees that their
data left or entered through the admin. Rows of no account (the shared price list) concern
no customer's access log; they are logged to the "meterlog.audit" logger instead.
"""

import logging
from collections import Counter, defaultdict

from django.db import transaction
from import_export.results import RowResult

from console.audit import Actor, record_event
from console.models import Account, AuditAction

logger = logging.getLogger("meterlog.audit")

IMPORT_COUNTS = {
    RowResult.IMPORT_TYPE_NEW: "new",
    RowResult.IMPORT_TYPE_UPDATE: "updated",
    RowResult.IMPORT_TYPE_DELETE: "deleted",
}


class AuditedImportExport:
    """Mixin for an import-export ModelAdmin (before ImportExportModelAdmin / ExportMixin)."""

    def get_data_for_export(self, request, queryset, **kwargs):
        dataset = super().get_data_for_export(request, queryset, **kwargs)
        slugs = _slugs(self.model, dataset, queryset)
        details = {
            "via": "admin",
            "model": str(self.model._meta.verbose_name_plural),
            "format": _format_title(self, kwargs.get("export_form")),
            "filters": {name: ",".join(request.GET.getlist(name)) for name in request.GET},
        }
        accounts = {account.slug: account for account in Account.objects.filter(slug__in=[s for s in slugs if s])}
        with transaction.atomic():
            for slug, account in accounts.items():
                event_details = details | {"rows": slugs[slug]}
                record_event(
                    account=account,
                    action=AuditAction.ADMIN_EXPORT,
                    actor=Actor.from_request(request),
                    details=event_details,
                )
        if slugs.get("", 0) or not accounts:
            logger.info("admin export by %s: %s, %s rows of no account", request.user, details, slugs.get("", 0))
        return dataset

    def process_result(self, result, request):
        counts: dict[int, Counter] = defaultdict(Counter)
        unowned = Counter()
        for row in result.valid_rows():
            name = IMPORT_COUNTS.get(row.import_type)
            if name is None or row.instance is None:
                continue
            account_id = row.instance.pk if self.model is Account else row.instance.account_id
            (counts[account_id] if account_id else unowned)[name] += 1
        details = {
            "via": "admin",
            "model": str(self.model._meta.verbose_name_plural),
            "file": request.POST.get("original_file_name", "") or request.POST.get("import_file_name", ""),
        }
        with transaction.atomic():
            for account in Account.objects.filter(pk__in=list(counts)):
                event_details = details | dict(counts[account.pk])
                record_event(
                    account=account,
                    action=AuditAction.ADMIN_IMPORT,
                    actor=Actor.from_request(request),
                    details=event_details,
                )
        if unowned:
            logger.info("admin import by %s: %s, rows of no account: %s", request.user, details, dict(unowned))
        return super().process_result(result, request)


def _slugs(model, dataset, queryset) -> Counter:
    """Rows of the file per account slug ("" for rows of no account). From the file's account
    column, or, when the operator left that column out, from the exported queryset."""
    if not dataset.height:
        return Counter()
    column = "slug" if model is Account else "account"
    if column in (dataset.headers or []):
        return Counter(slug or "" for slug in dataset[column])
    path = "slug" if model is Account else "account__slug"
    return Counter(slug or "" for slug in queryset.values_list(path, flat=True))


def _format_title(model_admin, form) -> str:
    if form is None or not hasattr(form, "cleaned_data") or "format" not in form.cleaned_data:
        return ""
    return model_admin.get_export_formats()[int(form.cleaned_data["format"])]().get_title()
