from django.contrib import admin
from django.db import models
from import_export.admin import ImportExportModelAdmin

from console.admin_resources import AccountResource
from console.audit import Actor, record_event
from console.models import Account, ApiToken, AuditAction, AuditEvent, Membership


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
    list_display = [
        "slug",
        "name",
        "tier",
        "retention_days_override",
        "timezone",
        "privacy_mode",
        "encryption_enabled",
        "created_at",
    ]
    list_filter = ["tier", "privacy_mode", "encryption_enabled"]
    # Switched on the encryption settings page (operators act as owners there): it checks
    # that FIELD_ENCRYPTION_KEY is usable and writes the access log.
    readonly_fields = ["encryption_enabled"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]

    def get_deleted_objects(self, objs, request):
        """An account that still has rows its deletion would have to delete first (the request
        log, on_delete=PROTECT: logs are kept for audit and billing and go only by the
        retention purge) is refused here, before Django's collector runs: to list protected
        rows it loads every one of them into memory, millions for a busy account. Serves the
        delete page and the "delete selected" action alike."""
        protected = [message for account in objs for message in _kept_rows(account)]
        if protected:
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # An operator's switch is in the account's access log like an owner's. (Imports of
        # accounts through import-export are not: an operator's bulk tool, logged by the admin.)
        if change and "privacy_mode" in form.changed_data:
            action = AuditAction.PRIVACY_ON if obj.privacy_mode else AuditAction.PRIVACY_OFF
            record_event(account=obj, action=action, actor=Actor.from_request(request), details={"via": "admin"})


def _kept_rows(account: Account) -> list[str]:
    """Why `account` cannot be deleted: a message per PROTECT relation that has rows. One
    EXISTS per relation (the request log's leads with account_id in every index). Found from
    the model's relations rather than by name: the console does not import the logs app."""
    messages = []
    # include_hidden: the request log's relation has related_name="+", which related_objects
    # leaves out (Django's deletion collector does not).
    for relation in Account._meta.get_fields(include_hidden=True):
        if not relation.auto_created or relation.concrete or getattr(relation, "on_delete", None) is not models.PROTECT:
            continue
        rows = relation.related_model._base_manager.filter(**{relation.field.name: account})
        if rows.exists():
            name = relation.related_model._meta.verbose_name_plural
            messages.append(
                f"Account “{account.slug}” still has {name}: they are kept for their retention period (audit and "
                "billing) and nobody deletes them by hand, so the account cannot be deleted."
            )
    return messages


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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The access log, read-only for everyone (superusers too): no add, change or delete."""

    list_display = ["created_at", "account", "username", "action", "ip_address"]
    list_filter = ["action"]
    search_fields = ["account__slug", "username"]
    list_select_related = ["account"]
    readonly_fields = ["account", "user", "username", "created_at", "action", "details", "ip_address"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
