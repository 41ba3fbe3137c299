"""What the log list's filter bar and its chip row show, from the URL's parameters.

The bar redraws itself from the raw values (a bad one stays visible next to its error);
the chips name each active filter value and link to the same URL without it.
"""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from logs.models import Status
from logs.ranges import LOG_RANGES, PRESETS, choices, time_bounds

MORE_FILTERS = ("min_tokens", "max_tokens", "min_cost", "max_cost", "tag", "request_id", "unpriced")
BAR_FILTERS = {"range", "start", "end", "model", "status", "api_key", "ip", "error_code", "q", *MORE_FILTERS}
# Parameters of the list that are not filters: dropped from chips, kept out of "active".
NOT_FILTERS = {"cursor"}


def filter_bar(params, filterset, *, models: list[str], api_keys: list, errors: dict) -> dict:
    cleaned = getattr(filterset.form, "cleaned_data", {}) or {}
    selected_models = params.getlist("model")
    selected_keys = params.getlist("api_key")
    known_keys = {key.identifier for key in api_keys}
    start = local_input(params.get("start", ""), cleaned.get("start"))
    end = local_input(params.get("end", ""), cleaned.get("end"))
    preset = params.get("range", "")
    # A preset fills the date fields with the window it means (the script leaves them out of
    # the URL while they are untouched, so the range keeps rolling).
    preset_filled = bool(preset in PRESETS and not params.get("start") and not params.get("end") and not errors)
    if preset_filled:
        # To the minute: the fields only show the window (seconds would not fit the inputs).
        now = timezone.now().replace(second=0, microsecond=0)
        preset_start, _ = time_bounds(preset, now=now)
        start, end = local_input("", preset_start), local_input("", now)
    return {
        "range": preset,
        "ranges": choices(LOG_RANGES),
        "start": start,
        "end": end,
        "preset_filled": preset_filled,
        # A value from a pasted URL that is not in the picker is still offered, so it shows.
        "models": sorted(set(models) | set(selected_models)),
        "selected_models": selected_models,
        "api_keys": [
            (key.identifier, key.display_name)
            for key in sorted(api_keys, key=lambda k: ((k.display_name or k.identifier).lower(), k.identifier))
        ]
        + [(value, "") for value in selected_keys if value not in known_keys],
        "selected_keys": selected_keys,
        "statuses": list(Status.choices) + [(v, v) for v in params.getlist("status") if v and v not in Status.values],
        "selected_statuses": params.getlist("status"),
        "ips": params.getlist("ip") or [""],
        "error_codes": params.getlist("error_code") or [""],
        "request_id": params.get("request_id", ""),
        "q": params.get("q", ""),
        "min_tokens": params.get("min_tokens", ""),
        "max_tokens": params.get("max_tokens", ""),
        "min_cost": params.get("min_cost", ""),
        "max_cost": params.get("max_cost", ""),
        "tag": params.get("tag", ""),
        "unpriced": params.get("unpriced", "") in ("true", "True", "1", "on"),
        "active": any(value for key, value in params.items() if key not in NOT_FILTERS),
        # The less used filters sit in a <details> that opens when one of them is set.
        "more_open": any(params.get(name) or errors.get(name) for name in MORE_FILTERS),
    }


def local_input(raw: str, value: datetime | None) -> str:
    """A datetime-local input value in the viewer's zone (an API-style "...Z" pasted into
    the URL is shown as the same instant, local)."""
    if value is None:
        return raw
    local = timezone.localtime(value)
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second or local.microsecond else "%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class Chip:
    name: str  # the parameter
    label: str  # "Model: gpt-4o"
    remove_url: str  # "?..." : this page without that value (and from the newest row)


_LABELS = {
    "model": "Model",
    "status": "Status",
    "api_key": "API key",
    "ip": "IP",
    "error_code": "Error code",
    "request_id": "Request ID",
    "tag": "Tag",
    "min_tokens": "Tokens ≥",
    "max_tokens": "Tokens ≤",
    "min_cost": "Cost ≥ $",
    "max_cost": "Cost ≤ $",
}


def filter_chips(params, *, key_names: dict[str, str], cleaned: dict) -> list[Chip]:
    """One chip per active filter value, in the URL's order."""
    chips = []
    for name in params:
        if name not in BAR_FILTERS:
            continue
        values = params.getlist(name)
        for value in values:
            if value == "":
                continue
            rest = params.copy()
            rest.setlist(name, [v for v in values if v != value])
            rest.pop("cursor", None)
            query = rest.urlencode()
            chips.append(Chip(name, _label(name, value, key_names=key_names, cleaned=cleaned), f"?{query}"))
    return chips


def _label(name: str, value: str, *, key_names: dict[str, str], cleaned: dict) -> str:
    if name == "range":
        preset = PRESETS.get(value)
        return preset.label if preset else f"Range: {value}"
    if name in ("start", "end"):
        shown = local_input(value, cleaned.get(name)).replace("T", " ")
        return f"{'From' if name == 'start' else 'To'} {shown}"
    if name == "q":
        return f"Search: “{value}”"
    if name == "unpriced":
        return "Unpriced only"
    if name == "status":
        return f"Status: {dict(Status.choices).get(value, value)}"
    if name == "api_key" and key_names.get(value):
        return f"API key: {key_names[value]}"
    label = _LABELS.get(name, name)
    if label.endswith("$"):
        return f"{label}{value}"
    return f"{label} {value}" if label.endswith(("≥", "≤")) else f"{label}: {value}"
