"""Pieces of the OpenAPI description shared by the apps' API views."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter


def many_param(name: str, description: str, **kwargs) -> OpenApiParameter:
    # Repeat the parameter to OR values: ?model=a&model=b (form style, explode).
    return OpenApiParameter(
        name, OpenApiTypes.STR, many=True, explode=True, style="form", description=description, **kwargs
    )
