from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("logs.api.urls")),
    path("analytics/", include("analytics.dashboard_urls")),
    path("analytics/", include("analytics.urls")),
    path("", include("logs.urls")),
    path("", include("console.ui_urls")),
]
