"""The console's own pages, under the "console" namespace that console/urls.py gives this
module together with analytics/home_urls.py (the dashboard home, "console:home")."""

from django.urls import path

from console import views

urlpatterns = [
    path("no-account/", views.no_account, name="no_account"),
    path("switch-account/", views.switch_account, name="switch_account"),
    path("zone/", views.zone_choice, name="zone_choice"),
    path("settings/", views.settings_account, name="settings"),
    path("settings/privacy/", views.settings_privacy, name="settings_privacy"),
    path("settings/access-log/", views.settings_access_log, name="settings_access_log"),
    path("settings/tokens/", views.settings_tokens, name="settings_tokens"),
    path("settings/tokens/new/", views.token_create, name="settings_token_create"),
    path("settings/tokens/<int:token_id>/revoke/", views.token_revoke, name="settings_token_revoke"),
    path("settings/members/", views.settings_members, name="settings_members"),
    path("settings/members/add/", views.member_add, name="settings_member_add"),
    path("settings/members/<int:membership_id>/role/", views.member_role, name="settings_member_role"),
    path("settings/members/<int:membership_id>/remove/", views.member_remove, name="settings_member_remove"),
]
