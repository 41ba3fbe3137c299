"""The reports pages, under /reports/ (console/urls.py includes this module)."""

from django.urls import path

from alerts import report_views

app_name = "reports"
urlpatterns = [
    path("", report_views.reports_page, name="index"),
    path("subscriptions/add/", report_views.subscription_add, name="subscribe"),
    path("subscriptions/<int:subscription_id>/remove/", report_views.subscription_remove, name="subscription_remove"),
    path("sent/<int:sent_id>/", report_views.sent_report, name="sent"),
    path("generate/", report_views.generate, name="generate"),
    path("generate/pdf", report_views.generate_pdf, name="generate_pdf"),
    path("open/", report_views.open_in_console, name="open"),
    path("unsubscribe/<str:token>/", report_views.unsubscribe, name="unsubscribe"),
]
