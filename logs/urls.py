from django.urls import path

from logs import encryption_views, key_views, price_views, views
from logs.deletions import views as deletion_views
from logs.exports import views as export_views
from logs.imports import views as import_views
from logs.retention import views as retention_views

app_name = "logs"
urlpatterns = [
    path("logs/", views.log_list, name="list"),
    path("logs/export/", export_views.log_export, name="export"),
    # path: gateways put slashes in request ids (e.g. "chatcmpl/abc").
    path("logs/<path:request_id>/", views.log_detail, name="detail"),
    path("keys/", key_views.api_keys, name="keys"),
    # Admins and owners name the gateway's keys.
    path("keys/<int:pk>/name/", key_views.api_key_name, name="key_name"),
    path("pricing/", price_views.pricing, name="pricing"),
    # Owners set and remove the account's own price of a model.
    path("pricing/price/", price_views.price_set, name="price_set"),
    path("pricing/price/remove/", price_views.price_remove, name="price_remove"),
    path("exports/", export_views.export_list, name="exports"),
    path("exports/<int:pk>/progress/", export_views.export_progress, name="export_progress"),
    path("exports/<int:pk>/download/", export_views.export_download, name="export_download"),
    path("imports/", import_views.import_list, name="imports"),
    path("imports/<int:pk>/", import_views.import_detail, name="import_detail"),
    path("imports/<int:pk>/progress/", import_views.import_progress, name="import_progress"),
    path("retention/", retention_views.retention, name="retention"),
    # A tab of console's settings pages: the log encryption switch (owners).
    path("settings/encryption/", encryption_views.settings_encryption, name="settings_encryption"),
    # Staff only: every account's period and the recent purge runs.
    path("operator/retention/", retention_views.retention_operator, name="retention_operator"),
    # Owners file deletion requests; operators approve or reject them.
    path("deletions/", deletion_views.deletion_requests, name="deletions"),
    path("deletions/<int:pk>/", deletion_views.deletion_detail, name="deletion_detail"),
    path("operator/deletions/", deletion_views.deletions_operator, name="deletions_operator"),
    path("operator/deletions/<int:pk>/decide/", deletion_views.deletion_decide, name="deletion_decide"),
]
