from django.urls import path

from alerts import views

urlpatterns = [
    path("", views.alert_list, name="list"),
    path("new/", views.rule_new, name="new"),
    path("<int:pk>/", views.rule_edit, name="edit"),
    path("<int:pk>/delete/", views.rule_delete, name="delete"),
    path("<int:pk>/test/<str:channel>/", views.rule_test, name="test"),
]
