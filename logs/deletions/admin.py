"""Deletion requests and their audit trail in the Django admin, read-only: they are records.
Decisions are made on the operators' page (logs:deletions_operator), which writes the audit
events; the admin has no add, change or delete."""

from django.contrib import admin

from logs.deletions.models import DeletionEvent, DeletionRequest


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeletionEventInline(admin.TabularInline):
    model = DeletionEvent
    fields = ["at", "action", "user", "details"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DeletionRequest)
class DeletionRequestAdmin(_ReadOnly):
    list_display = ["id", "account", "status", "start", "end", "filed_by", "decided_by", "rows_deleted", "created_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in DeletionRequest._meta.fields]
    inlines = [DeletionEventInline]


@admin.register(DeletionEvent)
class DeletionEventAdmin(_ReadOnly):
    list_display = ["at", "request", "action", "user"]
    list_filter = ["action"]
    readonly_fields = [f.name for f in DeletionEvent._meta.fields]
