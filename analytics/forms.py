"""The analytics page's filter form: tab, range, model / API key / status, time zone.

Everything lives in GET parameters so a URL copied from the browser (or a CSV link)
reproduces the same figures. Choices come from the current account only.
"""

from django import forms

from analytics.reports import RANGE_PRESETS
from console.params import StorableTextForm
from logs import selectors
from logs.models import Status

TABS = {"cost": "Cost", "trend": "Usage trend", "peak": "Peak time", "errors": "Error rate"}
RANGES = {**{key: preset.short_label for key, preset in RANGE_PRESETS.items()}, "custom": "Custom"}
DEFAULT_RANGE = "7d"
MAX_DAYS = 731  # "at most 2 years", a leap day included
ZONES = {"account": "Account zone", "viewer": "My time zone"}  # ?zone= pins a shared URL to one
# Dates outside these years are typing mistakes; they would also overflow date arithmetic.
MIN_YEAR, MAX_YEAR = 2000, 2100


def check_day_range(form: forms.Form, start, end, *, what: str = "A range") -> bool:
    """Add the form's errors for a range of local dates (years 2000-2100, end not before start,
    at most MAX_DAYS days); whether it is fine."""
    for name, value in (("start", start), ("end", end)):
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            form.add_error(name, f"Pick a date between {MIN_YEAR} and {MAX_YEAR}.")
            return False
    if end < start:
        form.add_error("end", "The end date is before the start date.")
        return False
    if (end - start).days + 1 > MAX_DAYS:
        form.add_error("end", f"{what} can span at most 2 years ({MAX_DAYS} days).")
        return False
    return True


class _LooseMultipleChoiceField(forms.MultipleChoiceField):
    """A multi-select whose values need not be in the choices: a model or key from a pasted
    URL that the account no longer lists still filters (to nothing), as on the log list."""

    def valid_value(self, value):
        return bool(str(value).strip()) and len(str(value)) <= 255


class AnalyticsForm(StorableTextForm):
    range = forms.ChoiceField(choices=list(RANGES.items()), required=False)
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To (inclusive)")
    model = _LooseMultipleChoiceField(required=False)
    api_key = _LooseMultipleChoiceField(required=False, label="API key")
    status = forms.MultipleChoiceField(choices=Status.choices, required=False)
    zone = forms.ChoiceField(choices=list(ZONES.items()), required=False, label="Time zone")

    def __init__(self, data, *, account):
        super().__init__(data)
        models = list(selectors.models_for(account=account).order_by("model").values_list("model", flat=True))
        keys = list(
            selectors.api_keys_for(account=account).order_by("identifier").values_list("identifier", "display_name")
        )
        selected_models = data.getlist("model") if hasattr(data, "getlist") else []
        selected_keys = data.getlist("api_key") if hasattr(data, "getlist") else []
        self.fields["model"].choices = [(m, m) for m in sorted(set(models) | {m for m in selected_models if m})]
        known = {identifier for identifier, _ in keys}
        self.fields["api_key"].choices = [(i, f"{name} ({i})" if name else i) for i, name in keys] + [
            (value, value) for value in selected_keys if value and value not in known
        ]

    def clean_zone(self):
        # Empty: the zone the topbar's switch chose (console.zones). A value pins a URL to one.
        return self.cleaned_data.get("zone") or ""

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        chosen = data.get("range") or ("custom" if start or end or self.has_error("start") else DEFAULT_RANGE)
        data["range"] = chosen
        if chosen != "custom":
            return data
        if self.has_error("start") or self.has_error("end"):
            return data
        if start is None:
            self.add_error("start", "Pick a start date for a custom range.")
        if end is None:
            self.add_error("end", "Pick an end date for a custom range.")
        if start is None or end is None:
            return data
        check_day_range(self, start, end)
        return data

    @property
    def tab(self) -> str:
        """The tab to show (an unknown one shows the first); read even when the filters are
        invalid, so the tabs stay usable."""
        value = self.data.get("tab", "")
        return value if value in TABS else "cost"
