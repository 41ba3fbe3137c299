"""Forms of the settings pages. They validate input; the writes happen in console.services."""

import zoneinfo
from functools import cache

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password

from console.models import Account, Role, TokenScope


@cache
def _zone_choices() -> list[tuple[str, str]]:
    # ~600 names: a plain <select> is fine, and the model's validator checks the value again.
    # "localtime", "Factory" and "posixrules" are files of the tz database, not zones anyone picks.
    hidden = {"localtime", "Factory", "posixrules"}
    return [(name, name) for name in sorted(zoneinfo.available_timezones() - hidden)]


class AccountSettingsForm(forms.ModelForm):
    """What an owner may change. Tier and retention are the operator's (admin only)."""

    timezone = forms.ChoiceField(
        choices=_zone_choices,
        help_text="Reporting zone: days and months in reports start at midnight here.",
    )

    class Meta:
        model = Account
        fields = ["name", "timezone"]


class PrivacyModeForm(forms.Form):
    """The privacy switch: its own form (and audit event), not a checkbox among the others."""

    privacy_mode = forms.ChoiceField(choices=[("on", "On"), ("off", "Off")])

    @property
    def enabled(self) -> bool:
        return self.cleaned_data["privacy_mode"] == "on"


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100, required=False, help_text="What the token is for, e.g. “prod gateway”.", strip=True
    )
    scope = forms.ChoiceField(
        choices=TokenScope.choices,
        initial=TokenScope.INGEST,
        widget=forms.RadioSelect,
        help_text="Ingest tokens can only send records; read tokens can only query them.",
    )


class MemberAddForm(forms.Form):
    email = forms.EmailField(max_length=150)
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Needed for a new user; an existing user keeps their password.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)

    def __init__(self, *args, account: Account, **kwargs):
        self.account = account
        super().__init__(*args, **kwargs)

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()

    def clean(self):
        cleaned = super().clean()
        email = cleaned.get("email")
        if not email:
            return cleaned
        user = get_user_model().objects.filter(username__iexact=email).first()
        if user is not None and user.memberships.filter(account=self.account).exists():
            self.add_error("email", f"{email} is already a member of {self.account.name}.")
        elif user is None:
            password = cleaned.get("password")
            if not password:
                self.add_error("password", "Set a password for the new user.")
            else:
                try:
                    validate_password(password, get_user_model()(username=email, email=email))
                except forms.ValidationError as exc:
                    self.add_error("password", exc)
        self.existing_user = user
        return cleaned


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
