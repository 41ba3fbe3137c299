"""The log API, under the "api" namespace that console/urls.py gives this module together
with analytics/api_urls.py (GET /api/v1/usage)."""

from django.urls import path

from logs.api import export_views, ingest_views, query_views

urlpatterns = [
    path("ingest", ingest_views.IngestView.as_view(), name="ingest"),
    path("ingest/litellm", ingest_views.LiteLLMIngestView.as_view(), name="ingest-litellm"),
    path("logs", query_views.LogListView.as_view(), name="log-list"),
    path("logs/<path:request_id>", query_views.LogDetailView.as_view(), name="log-detail"),
    path("export", export_views.ExportView.as_view(), name="export"),
    *query_views.schema_urlpatterns,
]
