"""Placeholder: the ingest endpoints are written in the ingest task."""

from rest_framework.views import APIView


class IngestView(APIView):
    pass


class LiteLLMIngestView(APIView):
    pass
