from django.urls import path

from analytics import api as analytics_api
from logs.api import export_views, ingest_views, query_views

app_name = "api"
urlpatterns = [
    path("ingest", ingest_views.IngestView.as_view(), name="ingest"),
    path("ingest/litellm", ingest_views.LiteLLMIngestView.as_view(), name="ingest-litellm"),
    path("logs", query_views.LogListView.as_view(), name="log-list"),
    path("logs/<path:request_id>", query_views.LogDetailView.as_view(), name="log-detail"),
    path("export", export_views.ExportView.as_view(), name="export"),
    path("usage", analytics_api.UsageView.as_view(), name="usage"),
    *query_views.schema_urlpatterns,
]
