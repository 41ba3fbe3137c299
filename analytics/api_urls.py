"""GET /api/v1/usage ("api:usage"): the analytics part of the API, under the "api" namespace
that console/urls.py gives this module together with logs/api/urls.py."""

from django.urls import path

from analytics import api

urlpatterns = [
    path("usage", api.UsageView.as_view(), name="usage"),
]
