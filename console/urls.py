"""The project's root urlconf (ROOT_URLCONF). It composes the apps' URL modules, naming them
by dotted path only: console imports neither logs nor analytics."""

from django.contrib import admin
from django.urls import include, path

# The "api" and "console" namespaces each span two apps. A namespace is given once, here:
# the modules below have no app_name, so their names join it ("api:usage", "console:home").
# (A namespace included twice would resolve, but reverse through the first include only.)
api_patterns = [
    path("", include("logs.api.urls")),
    path("", include("analytics.api_urls")),
    path("", include("alerts.api_urls")),
]
console_patterns = [
    path("", include("analytics.home_urls")),
    path("", include("console.ui_urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("console.auth_urls")),
    path("api/v1/", include((api_patterns, "api"))),
    path("analytics/", include("analytics.dashboard_urls")),
    path("analytics/", include("analytics.urls")),
    path("alerts/", include(("alerts.urls", "alerts"))),
    path("reports/", include("alerts.report_urls")),
    path("", include("logs.urls")),
    path("", include((console_patterns, "console"))),
]
