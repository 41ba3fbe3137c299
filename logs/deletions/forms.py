"""The owner's deletion request form and the operator's decision form. Times are UTC (the
form says so); every field refuses NUL characters (Django's CharField validator)."""

from datetime import UTC, datetime

from django import forms
from django.utils import timezone

from logs.deletions.models import MAX_REQUEST_IDS

UTC_INPUT = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


class UtcDateTimeField(forms.DateTimeField):
    """A naive input read as UTC, never in the viewer's zone (the request's range is UTC; a
    wall time in the viewer's DST gap is still a valid UTC time)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
        text = str(value).strip()
        if "\x00" in text:
            raise forms.ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
        for pattern in UTC_INPUT:
            try:
                return datetime.strptime(text, pattern).replace(tzinfo=UTC)
            except ValueError:
                continue
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class DeletionRequestForm(forms.Form):
    start = UtcDateTimeField(label="From (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    end = UtcDateTimeField(
        label="Until (UTC, not included)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    api_key = forms.CharField(label="API key (exact, optional)", max_length=255, required=False, strip=True)
    request_ids = forms.CharField(
        label=f"Request ids (optional, one per line, at most {MAX_REQUEST_IDS:,})",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_request_ids(self) -> list[str]:
        ids = list(
            dict.fromkeys(line.strip() for line in self.cleaned_data["request_ids"].splitlines() if line.strip())
        )
        if len(ids) > MAX_REQUEST_IDS:
            raise forms.ValidationError(f"At most {MAX_REQUEST_IDS:,} request ids ({len(ids):,} given).")
        long = [i for i in ids if len(i) > 255]
        if long:
            raise forms.ValidationError("A request id has at most 255 characters.")
        return ids

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start >= end:
                self.add_error("end", "The end must be after the start.")
            elif end > timezone.now():
                self.add_error("end", "The end cannot be in the future.")
        return data


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    note = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        if data.get("decision") == "reject" and not data.get("note"):
            self.add_error("note", "Say why the request is rejected.")
        return data
