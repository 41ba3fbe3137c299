"""The log API, under the "api" namespace that console/urls.py gives this module together
with analytics/api_urls.py (GET /api/v1/usage)."""

from django.urls import path, register_converter

from logs.api import export_views, ingest_views, query_views


class AnyTextConverter:
    """Like <path:...> but also across line breaks: `path` stops at a newline, and a request
    id holding one (%0A) then fell through to the console's HTML 404 instead of the API's."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyTextConverter, "anytext")

urlpatterns = [
    path("ingest", ingest_views.IngestView.as_view(), name="ingest"),
    path("ingest/litellm", ingest_views.LiteLLMIngestView.as_view(), name="ingest-litellm"),
    path("logs", query_views.LogListView.as_view(), name="log-list"),
    path("logs/<anytext:request_id>", query_views.LogDetailView.as_view(), name="log-detail"),
    path("export", export_views.ExportView.as_view(), name="export"),
    *query_views.schema_urlpatterns,
]
