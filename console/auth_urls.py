"""Django's login and password pages (django.contrib.auth.urls, same names), with the login
form that says "email" and the reset mail as a text and HTML pair in the console's words."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from console.auth_forms import EmailAuthenticationForm

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(authentication_form=EmailAuthenticationForm), name="login"),
    path(
        "password_reset/",
        auth_views.PasswordResetView.as_view(
            subject_template_name="registration/password_reset_subject.txt",
            email_template_name="registration/password_reset_email.txt",
            html_email_template_name="registration/password_reset_email.html",
        ),
        name="password_reset",
    ),
    path("", include("django.contrib.auth.urls")),
]
