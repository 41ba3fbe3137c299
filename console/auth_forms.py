"""The login form: a member's user name is their email, so the form and its error say "email"."""

from django.contrib.auth.forms import AuthenticationForm


class EmailAuthenticationForm(AuthenticationForm):
    error_messages = AuthenticationForm.error_messages | {
        "invalid_login": "Please enter a correct email and password. Note that the password is case-sensitive.",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = "Email"
