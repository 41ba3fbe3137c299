"""The operator's all-accounts view; included from console/urls.py under "analytics/",
before analytics.urls, so "analytics/operator/" resolves here. (The dashboard home, `/`, is
in analytics/home_urls.py.)"""

from django.urls import path

from analytics import dashboard_views

app_name = "dashboard"
urlpatterns = [
    path("operator/", dashboard_views.operator, name="operator"),
    path("operator/csv/", dashboard_views.operator_csv, name="operator_csv"),
]
