"""The owners' log encryption page (/settings/encryption/): which fields are encrypted and
which stay plain and filterable, whether a key is configured, and the switch. The write is
logs.encryption_settings.set_encryption (audited); the page is a tab of console's settings."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from console.audit import Actor
from console.models import Role
from console.privacy import ENCRYPTION_FIELDS
from console.tenancy import require_account
from logs import encryption
from logs.encryption_settings import set_encryption

ON_MESSAGE = "Log encryption is on: records received from now on are stored encrypted."
OFF_MESSAGE = "Log encryption is off: records received from now on are stored plain; encrypted rows stay encrypted."


class EncryptionForm(forms.Form):
    encryption = forms.ChoiceField(choices=[("on", "On"), ("off", "Off")])

    @property
    def enabled(self) -> bool:
        return self.cleaned_data["encryption"] == "on"


@require_account(min_role=Role.OWNER)
def settings_encryption(request):
    account = request.account
    form = EncryptionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            changed = set_encryption(account=account, enabled=form.enabled, actor=Actor.from_request(request))
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if changed:
                messages.success(request, ON_MESSAGE if form.enabled else OFF_MESSAGE)
            return redirect("logs:settings_encryption")
    context = {
        "account": account,
        "form": form,
        "tab": "encryption",
        "fields": ENCRYPTION_FIELDS,
        "key_problem": encryption.key_problem(),
        "key_count": len(encryption.keys()),
    }
    return render(request, "logs/settings_encryption.html", context, status=400 if form.errors else 200)
