"""The purge runs in the Django admin, read-only: a run is a record, never edited."""

from django.contrib import admin

from logs.retention.models import PurgeRun


@admin.register(PurgeRun)
class PurgeRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "finished_at", "status", "dry_run", "only_account", "deleted", "batches"]
    list_filter = ["status", "dry_run"]
    readonly_fields = [f.name for f in PurgeRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
