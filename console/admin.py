from django.contrib import admin
from django.db import models
from import_export.admin import ImportExportModelAdmin

from console.admin_audit import AuditedImportExport
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
class AccountAdmin(ImportExportPermissions, AuditedImportExport, ImportExportModelAdmin):
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
        # An operator's changes are in the account's access log like an owner's (imports of
        # accounts too: console.admin_audit).
        if not change:
            return
        actor = Actor.from_request(request)
        if "privacy_mode" in form.changed_data:
            action = AuditAction.PRIVACY_ON if obj.privacy_mode else AuditAction.PRIVACY_OFF
            record_event(account=obj, action=action, actor=actor, details={"via": "admin"})
        changes = {
            name: [form.initial.get(name), form.cleaned_data[name]]
            for name in ADMIN_AUDITED_FIELDS
            if name in form.changed_data
        }
        if changes:
            details = {"via": "admin", "changes": changes}
            record_event(account=obj, action=AuditAction.SETTINGS_CHANGED, actor=actor, details=details)

    def save_formset(self, request, form, formset, change):
        """Members added, re-roled or removed here are in the access log as on the members page."""
        actor = Actor.from_request(request)
        events = []
        for member_form in formset.forms:
            membership = member_form.instance
            deleting = formset.can_delete and formset._should_delete_form(member_form)
            if not member_form.has_changed() and not deleting:
                continue
            username = membership.user.get_username() if membership.user_id else ""
            if deleting:
                if membership.pk:
                    events.append((AuditAction.MEMBER_REMOVED, {"member": username, "role": membership.role}))
            elif membership.pk is None:
                events.append((AuditAction.MEMBER_ADDED, {"member": username, "role": membership.role}))
            elif "role" in member_form.changed_data:
                role = [member_form.initial.get("role"), membership.role]
                events.append((AuditAction.MEMBER_ROLE_CHANGED, {"member": username, "role": role}))
        super().save_formset(request, form, formset, change)
        for action, details in events:
            record_event(account=form.instance, action=action, actor=actor, details=details | {"via": "admin"})


# Account fields an operator changes in the admin that the access log records (privacy mode
# has its own events). Tier and retention are the operator's alone.
ADMIN_AUDITED_FIELDS = ("name", "timezone", "tier", "retention_days_override")


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

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "revoked_at" in form.changed_data and obj.revoked_at is not None:
            details = {"token_id": obj.pk, "hint": obj.hint, "name": obj.name, "scope": obj.scope, "via": "admin"}
            record_event(
                account=obj.account,
                action=AuditAction.TOKEN_REVOKED,
                actor=Actor.from_request(request),
                details=details,
            )


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
