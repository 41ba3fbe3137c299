"""The forms of the reports pages: a subscription, and the range and filter of a generated report.

Model and API key choices are the current account's own; a value it does not list is an error.
"""

from datetime import date, timedelta

from django import forms

from alerts.models import Frequency
from analytics.forms import check_day_range
from console.params import StorableTextForm
from logs import selectors

DEFAULT_DAYS = 30


def _choices(account) -> tuple[list, list]:
    models = sorted(set(selectors.models_for(account=account).values_list("model", flat=True)))
    keys = selectors.api_keys_for(account=account).order_by("identifier").values_list("identifier", "display_name")
    return (
        [("", "All models"), *((m, m) for m in models)],
        [("", "All API keys"), *((i, f"{name} ({i})" if name else i) for i, name in keys)],
    )


class _ScopeForm(StorableTextForm):
    model = forms.ChoiceField(required=False)
    api_key = forms.ChoiceField(required=False, label="API key")

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices, self.fields["api_key"].choices = _choices(account)


class SubscriptionForm(_ScopeForm):
    frequency = forms.ChoiceField(choices=Frequency.choices)
    hour = forms.TypedChoiceField(
        choices=[(h, f"{h:02d}:00") for h in range(24)], coerce=int, initial=8, label="Send at"
    )


class GenerateForm(_ScopeForm):
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To (inclusive)")

    def __init__(self, data, *, account, today: date):
        super().__init__(data, account=account)
        self.today = today

    def clean(self):
        data = super().clean()
        if self.has_error("start") or self.has_error("end"):
            return data
        end = data.get("end") or self.today
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if not check_day_range(self, start, end, what="A report"):
            return data
        data["start"], data["end"] = start, end
        return data
