"""The alert rule form: scope, the kind's parameters, channels. Writes are in alerts.services.

Each kind's parameters are fields of their own (`<kind>_<name>`, e.g. `budget_amount`); only
the chosen kind's are read, and alerts.rules.clean_params checks them once more, so the form
and the API refuse the same values. The error rate is entered in percent.
"""

import copy
import re
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from alerts import rules
from alerts.models import AlertRule, RuleKind
from alerts.webhooks import WebhookURLError, check_url
from console.params import StorableTextForm

MAX_ADDRESSES = 20
MAX_COOLDOWN_MINUTES = 7 * 24 * 60


def _bounds(kind: str, name: str) -> dict:
    low, high = rules.BOUNDS[kind][name]
    return {"min_value": low, "max_value": high}


def _int(kind, name, label, help_text=""):
    return forms.IntegerField(label=label, required=False, help_text=help_text, **_bounds(kind, name))


def _float(kind, name, label, help_text=""):
    return forms.FloatField(label=label, required=False, help_text=help_text, **_bounds(kind, name))


def _choice(kind, name, label, labels: dict):
    choices = [(value, labels.get(value, value)) for value in rules.CHOICES[kind][name]]
    return forms.ChoiceField(label=label, required=False, choices=choices)


# kind -> {parameter: form field}; the error rate threshold is in percent here.
PARAM_FIELDS = {
    RuleKind.COST_ANOMALY: {
        "k": _float(RuleKind.COST_ANOMALY, "k", "Standard deviations (k)", "Fires above mean + k·σ of the baseline."),
        "days": _int(RuleKind.COST_ANOMALY, "days", "Baseline days", "Full days before the day judged."),
        "min_history_days": _int(
            RuleKind.COST_ANOMALY, "min_history_days", "Minimum days with traffic", "Fewer in the baseline: no verdict."
        ),
        "floor": _float(RuleKind.COST_ANOMALY, "floor", "Minimum cost (USD)", "The day must also cost more than this."),
    },
    RuleKind.ERROR_RATE: {
        "threshold": forms.FloatField(
            label="Error rate above (%)", required=False, min_value=0.1, max_value=100, help_text="e.g. 10 for 10 %."
        ),
        "window_minutes": _int(RuleKind.ERROR_RATE, "window_minutes", "Window (minutes)"),
        "min_requests": _int(
            RuleKind.ERROR_RATE, "min_requests", "Minimum requests", "Fewer in the window: no verdict."
        ),
    },
    RuleKind.TOKEN_SPIKE: {
        "mode": _choice(
            RuleKind.TOKEN_SPIKE, "mode", "Limit", {"absolute": "A number of tokens", "p99": "A multiple of the p99"}
        ),
        "tokens": _int(RuleKind.TOKEN_SPIKE, "tokens", "Tokens in one request above"),
        "factor": _float(RuleKind.TOKEN_SPIKE, "factor", "Times the p99"),
        "days": _int(RuleKind.TOKEN_SPIKE, "days", "p99 of the last days"),
    },
    RuleKind.BUDGET: {
        "amount": forms.DecimalField(
            label="Amount (USD)", required=False, min_value=Decimal("0.01"), max_value=Decimal(10**9), decimal_places=2
        ),
        "period": _choice(RuleKind.BUDGET, "period", "Period", {"daily": "Per day", "monthly": "Per month"}),
    },
}


def param_field_name(kind: str, name: str) -> str:
    return f"{kind}_{name}"


def _addresses(value: str) -> list[str]:
    items = [item for item in re.split(r"[\s,;]+", value or "") if item]
    if len(items) > MAX_ADDRESSES:
        raise ValidationError(f"At most {MAX_ADDRESSES} addresses.")
    for item in items:
        try:
            validate_email(item)
        except ValidationError:
            raise ValidationError(f"{item!r} is not an email address.") from None
    return list(dict.fromkeys(items))


class AlertRuleForm(StorableTextForm):
    kind = forms.ChoiceField(choices=RuleKind.choices, initial=RuleKind.COST_ANOMALY)
    name = forms.CharField(max_length=100, required=False, help_text="Shown in notifications; the kind if empty.")
    enabled = forms.BooleanField(required=False, initial=True)
    model = forms.CharField(max_length=255, required=False, help_text="Only this model's requests (empty: all).")
    api_key = forms.CharField(
        max_length=255, required=False, label="API key", help_text="Only this key's requests (empty: every key)."
    )
    cooldown_minutes = forms.IntegerField(
        min_value=0,
        max_value=MAX_COOLDOWN_MINUTES,
        initial=60,
        label="Cooldown (minutes)",
        help_text="While it stays in breach, notify again only after this long.",
    )
    email_enabled = forms.BooleanField(required=False, initial=True, label="Send email")
    email_users = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Members",
        help_text="With no member and no address chosen: the account's owners and admins.",
    )
    email_addresses = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Other addresses",
        help_text="One per line or comma-separated.",
    )
    webhook_url = forms.CharField(
        max_length=500,
        required=False,
        label="Webhook URL",
        help_text="JSON POST with a Slack-compatible text field, signed (X-Meterlog-Signature).",
    )
    regenerate_secret = forms.BooleanField(required=False, label="Make a new signing secret")

    def __init__(self, *args, account, instance: AlertRule | None = None, **kwargs):
        self.account = account
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_of(instance)
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(memberships__account=account).exclude(email="").order_by("email")
        self.fields["email_users"].queryset = users
        self.fields["email_users"].label_from_instance = lambda user: user.email
        for kind, fields in PARAM_FIELDS.items():
            for name, field in fields.items():
                self.fields[param_field_name(kind, name)] = copy.deepcopy(field)
        if instance is not None and instance.pk:
            # A rule keeps its kind: its history and state are that kind's.
            self.fields["kind"].disabled = True

    @staticmethod
    def initial_of(rule: AlertRule) -> dict:
        initial = {
            "kind": rule.kind,
            "name": rule.name,
            "enabled": rule.enabled,
            "model": rule.model,
            "api_key": rule.api_key,
            "cooldown_minutes": rule.cooldown_minutes,
            "email_enabled": rule.email_enabled,
            "email_users": list(rule.email_users.all()) if rule.pk else [],
            "email_addresses": "\n".join(rule.email_addresses or []),
            "webhook_url": rule.webhook_url,
        }
        for name, value in rules.params_of(rule.kind, rule.params).items():
            if rule.kind == RuleKind.ERROR_RATE and name == "threshold" and value is not None:
                value = round(float(value) * 100, 6)
            initial[param_field_name(rule.kind, name)] = value
        return initial

    def param_fields(self) -> dict[str, list]:
        """{kind: [bound fields]} for the template's fieldsets."""
        return {kind: [self[param_field_name(kind, name)] for name in fields] for kind, fields in PARAM_FIELDS.items()}

    def clean_email_addresses(self):
        return _addresses(self.cleaned_data.get("email_addresses", ""))

    def clean_webhook_url(self):
        url = (self.cleaned_data.get("webhook_url") or "").strip()
        if not url:
            return ""
        try:
            return check_url(url)
        except WebhookURLError as exc:
            raise ValidationError(str(exc)) from None

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind not in PARAM_FIELDS:
            return cleaned
        raw = {}
        for name in PARAM_FIELDS[kind]:
            value = cleaned.get(param_field_name(kind, name))
            if value in (None, ""):
                continue
            if kind == RuleKind.ERROR_RATE and name == "threshold":
                value = value / 100
            elif isinstance(value, Decimal):
                value = float(value)
            raw[name] = value
        try:
            cleaned["params"] = rules.clean_params(kind, raw)
        except ValueError as exc:
            name = str(exc).split()[0]
            field = param_field_name(kind, name) if name in PARAM_FIELDS[kind] else None
            self.add_error(field, str(exc).capitalize() + ".")
            return cleaned
        # The scopes the live rule can read (alerts.rules.clean_rule, as the evaluation).
        model, api_key = (cleaned.get("model") or "").strip(), (cleaned.get("api_key") or "").strip()
        try:
            rules.clean_rule(kind, cleaned["params"], model=model, api_key=api_key)
        except ValueError as exc:
            self.add_error("api_key", str(exc).capitalize() + ".")
        return cleaned

    def rule_values(self) -> dict:
        """The cleaned values as AlertRule fields (email_users apart: a many-to-many)."""
        data = self.cleaned_data
        values = {
            name: data[name]
            for name in ("name", "enabled", "model", "api_key", "cooldown_minutes", "email_enabled", "webhook_url")
        }
        values["name"] = values["name"].strip()
        values["model"] = values["model"].strip()
        values["api_key"] = values["api_key"].strip()
        values["email_addresses"] = data["email_addresses"]
        values["params"] = data["params"]
        values["kind"] = self.instance.kind if self.instance is not None and self.instance.pk else data["kind"]
        return values
