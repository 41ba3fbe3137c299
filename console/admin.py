from django.contrib import admin

from console.models import Account, ApiToken, Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
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
