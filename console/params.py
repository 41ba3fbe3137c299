"""What a request parameter may hold so that PostgreSQL can store and compare it; shared by
every parser of query parameters (the log FilterSet, the usage API, the analytics form) and
the request-id lookup, so a bad value answers 400 (or 404) there instead of a 500 from the
database. SQLite would take these values; they are refused on both so the answer is the same.
Also the check of parameter names the API's GET endpoints share (unknown_parameter_errors).
"""

import difflib
import re
from datetime import UTC, datetime, timedelta

from django import forms

# PostgreSQL text cannot hold NUL; a lone surrogate cannot be encoded as UTF-8 at all.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# PostgreSQL refuses a time zone displacement of 16 hours or more ("+16:00"); Python takes up to 24.
MAX_OFFSET = timedelta(hours=16)
# Years Python can still shift by a day or a month in any zone (datetime stops at 1 and 9999).
MIN_YEAR, MAX_YEAR = 2, 9998


def text_problem(value) -> str | None:
    """Why `value` cannot be stored or compared by PostgreSQL ("must not ..."), or None."""
    match = _UNSTORABLE.search(value) if isinstance(value, str) else None
    if match is None:
        return None
    if match.group() == "\x00":
        return "must not contain a NUL character (\\x00, %00)"
    return "must not contain an unpaired surrogate (e.g. \\ud800): it is not valid Unicode text"


def raw_values(data, name: str) -> list:
    """Every value of `name` in a QueryDict, a MultiValueDict or a plain dict."""
    if hasattr(data, "getlist"):
        return data.getlist(name)
    value = data.get(name)
    return list(value) if isinstance(value, (list, tuple)) else [value]


def text_errors(data, names) -> dict[str, list[str]]:
    """{name: [message]} for each parameter in `names` with a value PostgreSQL cannot take; the
    message names the parameter, as pages list messages without their field."""
    errors = {}
    for name in names:
        for value in raw_values(data, name):
            problem = text_problem(value)
            if problem:
                errors[name] = [f"{name} {problem}."]
                break
    return errors


def moment_problem(moment: datetime) -> str | None:
    """Why an aware datetime cannot go to PostgreSQL (or through the zone arithmetic of the
    reports), or None."""
    offset = moment.utcoffset()
    if offset is not None and abs(offset) >= MAX_OFFSET:
        return "The UTC offset must be between -15:59 and +15:59."
    try:
        year = moment.astimezone(UTC).year
    except OverflowError:
        year = None
    if year is None or not MIN_YEAR <= year <= MAX_YEAR:
        return f"Must be between the years {MIN_YEAR:04d} and {MAX_YEAR} (UTC)."
    return None


class StorableTextForm(forms.Form):
    """A form whose every field's raw value is refused when PostgreSQL cannot take it, whatever
    the field does with it (a boolean filter ignores junk, but an export stores it). This
    message replaces the field's own ("Unknown status 'a\\x00'"), so every parameter says the same."""

    def clean(self):
        cleaned = super().clean()
        for name, messages in text_errors(self.data, self.fields).items():
            self._errors.pop(name, None)
            self.add_error(name, messages)
        return cleaned


def unknown_parameter_errors(params, allowed) -> dict[str, list[str]]:
    """{name: [message]} for each parameter of `params` not in `allowed`: a typo (`modle=`) would
    otherwise be ignored and answer unfiltered rows. The message names the close match, if
    any, and every name the endpoint takes."""
    allowed = sorted(set(allowed))
    takes = f"this endpoint takes: {', '.join(allowed)}." if allowed else "this endpoint takes no query parameters."
    errors = {}
    for name in params:
        if name in allowed:
            continue
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        # repr() of the name: it may hold anything (spaces, NUL), and the message must show it.
        errors[name] = [f"Unknown parameter {name!r}; {hint}{takes}"]
    return errors
