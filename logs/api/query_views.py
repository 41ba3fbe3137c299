"""Placeholder: the query endpoints are written in the query-API task."""

from rest_framework.views import APIView


class LogListView(APIView):
    pass


class LogDetailView(APIView):
    pass


schema_urlpatterns = []
