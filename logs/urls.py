from django.urls import path

from logs import export_views_page, views

app_name = "logs"
urlpatterns = [
    path("logs/", views.log_list, name="list"),
    path("logs/export/", export_views_page.log_export, name="export"),
    # path: gateways put slashes in request ids (e.g. "chatcmpl/abc").
    path("logs/<path:request_id>/", views.log_detail, name="detail"),
    path("keys/", views.api_keys, name="keys"),
    path("pricing/", views.pricing, name="pricing"),
    path("exports/", export_views_page.export_list, name="exports"),
]
