"""The forms of the reports pages: a subscription, and the range and filter of a generated report.

Model and API key choices are the current account's own; a value it does not list is an error.
"""

from datetime import date, timedelta

from django import forms

from alerts.models import Frequency
from analytics.forms import MAX_DAYS, MAX_YEAR, MIN_YEAR
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
        for name, value in (("start", start), ("end", end)):
            if not MIN_YEAR <= value.year <= MAX_YEAR:
                self.add_error(name, f"Pick a date between {MIN_YEAR} and {MAX_YEAR}.")
                return data
        if end < start:
            self.add_error("end", "The end date is before the start date.")
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("end", f"A report can span at most 2 years ({MAX_DAYS} days).")
        data["start"], data["end"] = start, end
        return data
