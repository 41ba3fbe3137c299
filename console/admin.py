from django.contrib import admin
from import_export.admin import ImportExportModelAdmin

from console.admin_resources import AccountResource
from console.models import Account, ApiToken, Membership


class ImportExportPermissions:
    """Who may use import-export in the admin (on top of is_staff, which admin_view checks):
    exporting needs the model's "view" permission, importing its "change" permission (and
    "add" where an import may create rows). Done here rather than with the global
    IMPORT_EXPORT_*_PERMISSION_CODE settings because the needed codes differ per model."""

    import_creates_rows = False

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def has_import_permission(self, request):
        if self.import_creates_rows and not self.has_add_permission(request):
            return False
        return self.has_change_permission(request)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Account)
class AccountAdmin(ImportExportPermissions, ImportExportModelAdmin):
    # Import/export by slug (console/admin_resources.py); an import may create accounts.
    resource_classes = [AccountResource]
    import_creates_rows = True
    list_display = ["slug", "name", "tier", "retention_days_override", "timezone", "privacy_mode", "created_at"]
    list_filter = ["tier", "privacy_mode"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    # Tokens are created with the create_token command or the settings page, which show
    # the secret once; the admin only lists and revokes them.
    list_display = ["hint", "account", "scope", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope"]
    readonly_fields = ["account", "scope", "hint", "created_at", "created_by", "last_used_at"]
    fields = ["account", "scope", "name", "hint", "created_at", "created_by", "last_used_at", "revoked_at"]

    def has_add_permission(self, request):
        return False
