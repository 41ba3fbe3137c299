"""The dashboard home (`/`, "console:home"): an analytics page under the console's URL
namespace, which console/urls.py gives this module together with console/ui_urls.py."""

from django.urls import path

from analytics import dashboard_views

urlpatterns = [
    path("", dashboard_views.dashboard, name="home"),
]
