from django.urls import path

from logs import views

app_name = "logs"
urlpatterns = [
    path("logs/", views.log_list, name="list"),
    # path: gateways put slashes in request ids (e.g. "chatcmpl/abc").
    path("logs/<path:request_id>/", views.log_detail, name="detail"),
    path("keys/", views.api_keys, name="keys"),
    path("pricing/", views.pricing, name="pricing"),
]
