"""Response bodies shared by the apps' API views (logs and analytics), for the OpenAPI
description: the 400 body naming bad parameters, the bare {"detail"} of 401 / 403 / 404,
and the 422 a query timeout answers (console.api_errors)."""

from rest_framework import serializers


class FilterErrorsSerializer(serializers.Serializer):
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages by parameter name, e.g. {'limit': ['Must be between 1 and 1000.']}",
    )


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class QueryTimeoutSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=["query_timeout"])


class EncryptionKeySerializer(serializers.Serializer):
    """The 503 of a missing or wrong log encryption key (console.errors.EncryptionKeyError)."""

    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=["encryption_key"])
