"""GET /api/v1/alerts/events ("api:alert-events"), under the "api" namespace that
console/urls.py gives the apps' API modules."""

from django.urls import path

from alerts import api

urlpatterns = [
    path("alerts/events", api.AlertEventsView.as_view(), name="alert-events"),
]
