"""One raw ingest record -> a clean dict, or {field: [messages]}.

Plain Python on purpose: ingest validates thousands of records per request, and a DRF
serializer or Django form per record would cost more than the database insert itself.

Beyond the field rules of the contract, everything that the database would refuse is
refused here, so a bad record is rejected by index instead of failing the whole batch
with a 500: numbers past what their column holds after rounding (logs.ingest.bounds), NaN
and Infinity, NUL characters and lone surrogates (PostgreSQL text and jsonb cannot hold
them), scoped IPv6 addresses. Secrets in request_params, error_message, error_details and
user_agent are replaced by their masked form here (logs.secrets); the api_key is masked by
the service, which also needs its fingerprint.
"""

import ipaddress
import json
import math
import re
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from logs.ingest import bounds
from logs.ingest.parsing import BadLine
from logs.models import ApiKey
from logs.secrets import scrub_json, scrub_text

FUTURE_TOLERANCE = timedelta(minutes=5)
# Epoch milliseconds sent as seconds land in the far future (rejected above); epoch values
# this early are the opposite unit mistake, or a zero, and would create stray partitions.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Keys that carry prompt or completion text: removed from request_params at every depth.
PROMPT_KEYS = frozenset({"messages", "prompt", "input", "contents", "system", "response"})
MAX_PARAMS_BYTES = 16_384
MAX_TAGS_BYTES = 16_384
MAX_ERROR_DETAILS_BYTES = 65_536
# Long tracebacks are cut rather than rejected: the usage record matters more than its tail.
MAX_ERROR_MESSAGE_CHARS = 65_536
NON_FIELD = "non_field_errors"
STATUSES = frozenset({"success", "error"})
REQUIRED = "This field is required."
# A JSON-escaped NUL not preceded by an escaping backslash: jsonb refuses \u0000.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# One encoder for every record (json.dumps with options builds a new one per call); its
# output is what goes into the jsonb columns, so each object is serialised once.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


class Invalid(Exception):
    pass


def _text(value, max_len: int) -> str:
    if type(value) is str and len(value) <= max_len and value.isascii() and "\x00" not in value:
        return value  # the common case, without the checks below
    if not isinstance(value, str):
        raise Invalid("Must be a string.")
    if len(value) > max_len:
        raise Invalid(f"Must be at most {max_len} characters.")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Invalid("Must be valid Unicode (no lone surrogates).") from exc
    if "\x00" in value:
        raise Invalid("Must not contain NUL characters.")
    return value


def _required_text(value, max_len: int) -> str:
    value = _text(value, max_len)
    if not value.strip():
        raise Invalid("Must not be empty.")
    return value


def _int(value, bound: bounds.IntBound) -> int:
    if type(value) is int and bound.minimum <= value <= bound.maximum:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid("Must be an integer.")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("Must be a finite number.")
        if not value.is_integer():
            raise Invalid("Must be a whole number.")
        value = int(value)
    try:
        return bound.check(value)
    except bounds.OutOfRange as exc:
        raise Invalid(str(exc)) from exc


def _column_int(name: str):
    """The parser of an optional integer column, bounded by that column."""
    bound = bounds.BOUNDS[name]
    return lambda value: None if value is None else _int(value, bound)


def _timestamp(value, now: datetime) -> datetime:
    try:
        if isinstance(value, bool):
            raise Invalid("Must be an RFC 3339 string or epoch seconds.")
        if isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                raise Invalid("Must be a finite number of epoch seconds.")
            ts = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str):
            text = value.strip().upper()
            # fromisoformat also takes a bare date; RFC 3339 needs a time and an offset.
            if len(text) > 64 or ("T" not in text and " " not in text):
                raise Invalid("Must be an RFC 3339 timestamp such as 2026-11-24T21:42:31.123456Z.")
            ts = datetime.fromisoformat(text)
            if ts.tzinfo is None:
                raise Invalid("Must have a time zone offset or Z.")
            ts = ts.astimezone(UTC)
        else:
            raise Invalid("Must be an RFC 3339 string or epoch seconds.")
    except (ValueError, OverflowError, OSError) as exc:
        raise Invalid("Must be an RFC 3339 timestamp such as 2026-11-24T21:42:31.123456Z.") from exc
    if ts < EARLIEST:
        raise Invalid("Is before 2000-01-01; epoch values are seconds.")
    if ts > now + FUTURE_TOLERANCE:
        raise Invalid("Is more than 5 minutes in the future.")
    return ts


def parse_cost(value) -> Decimal:
    """A cost as sent, rounded half-up to the column's places; refused when the ROUNDED value
    does not fit the column. Floats go through str(), which gives the shortest repr: 4.2e-06
    stays 0.0000042, not 0.00000420000000000000003..."""
    if isinstance(value, bool):
        raise Invalid("Must be a number or a decimal string.")
    if isinstance(value, int):
        cost = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("Must be a finite number.")
        cost = Decimal(str(value))
    elif isinstance(value, str):
        if len(value) > 64:
            raise Invalid("Must be a number or a decimal string.")
        try:
            cost = Decimal(value.strip())
        except InvalidOperation as exc:
            raise Invalid("Must be a number or a decimal string.") from exc
        if not cost.is_finite():
            raise Invalid("Must be a finite number.")
    else:
        raise Invalid("Must be a number or a decimal string.")
    try:
        return bounds.COST.quantize(cost)
    except bounds.OutOfRange as exc:
        raise Invalid(str(exc)) from exc


def _ip(value) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise Invalid("Must be an IPv4 or IPv6 address.")
    # inet_pton/ntop are C and strict (no octal, no zones): ~20x faster than ipaddress.
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_ntop(family, socket.inet_pton(family, value))
        except (OSError, ValueError):
            pass
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError as exc:
        raise Invalid("Must be an IPv4 or IPv6 address.") from exc
    if ip.version == 6 and ip.scope_id:
        ip = ipaddress.IPv6Address(int(ip))  # the inet type has no zone index
    return str(ip)


def to_json(value, max_bytes: int) -> str:
    """Compact JSON text of `value` as stored, after the checks jsonb and the limits need."""
    try:
        text = _ENCODE(value)
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
    except ValueError as exc:  # NaN/Infinity; UnicodeEncodeError (lone surrogate) is a ValueError
        raise Invalid("Must be JSON without NaN, Infinity or lone surrogates.") from exc
    except RecursionError as exc:
        raise Invalid("Is nested too deeply.") from exc
    if size > max_bytes:
        raise Invalid(f"Must be at most {max_bytes} bytes as compact JSON (got {size}).")
    if "\\u0000" in text and _JSON_NUL.search(text):
        raise Invalid("Must not contain NUL characters.")
    return text


def strip_prompt_keys(value):
    """A copy without PROMPT_KEYS in any nested object: no prompt text is ever stored."""
    if isinstance(value, dict):
        return {k: strip_prompt_keys(v) for k, v in value.items() if k not in PROMPT_KEYS}
    if isinstance(value, list):
        return [strip_prompt_keys(v) for v in value]
    return value


def _request_params(value) -> tuple[dict, str]:
    if not isinstance(value, dict):
        raise Invalid("Must be a JSON object.")
    try:
        params = scrub_json(strip_prompt_keys(value))
    except RecursionError as exc:
        raise Invalid("Is nested too deeply.") from exc
    return params, to_json(params, MAX_PARAMS_BYTES)


def _tags(value) -> tuple[dict, str]:
    if not isinstance(value, dict):
        raise Invalid("Must be a JSON object of string keys and string values.")
    for tag, tag_value in value.items():
        if not isinstance(tag_value, str):
            raise Invalid(f"Tag {tag!r} must have a string value.")
        _text(tag, 255)
        _text(tag_value, 4096)
    return value, to_json(value, MAX_TAGS_BYTES)


def _error_details(value) -> tuple[object, str]:
    try:
        value = scrub_json(value)  # provider errors echo request headers at times
    except RecursionError as exc:
        raise Invalid("Is nested too deeply.") from exc
    return value, to_json(value, MAX_ERROR_DETAILS_BYTES)


def _error_code(value) -> str:
    # Gateways send HTTP statuses both as 429 and "429"; both mean the same code.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _text(value, 64)


def _error_message(value) -> str:
    if isinstance(value, str):
        value = scrub_text(value)  # before the cut, which could leave a secret unrecognisable
    if isinstance(value, str) and len(value) > MAX_ERROR_MESSAGE_CHARS:
        value = value[: MAX_ERROR_MESSAGE_CHARS - 1] + "…"
    return _text(value, MAX_ERROR_MESSAGE_CHARS)


def _api_key(value) -> str:
    value = _text(value, 1024)
    # What is stored is the identifier: a long secret is fine, its masked form is short.
    if len(value) > 255 and len(ApiKey.identifier_for(value)) > 255:
        raise Invalid("Must be at most 255 characters.")
    return value


# Optional fields: (name, parser, value when absent or null).
_OPTIONAL = (
    ("cached_tokens", _column_int("cached_tokens"), None),
    ("reasoning_tokens", _column_int("reasoning_tokens"), None),
    ("api_key", _api_key, ""),
    ("ip_address", _ip, None),
    ("user_agent", lambda v: _text(scrub_text(v) if isinstance(v, str) else v, 512), ""),
    ("latency_ms", _column_int("latency_ms"), None),
    ("error_code", _error_code, ""),
    ("error_message", _error_message, ""),
)


_JSON_FIELDS = (
    ("request_params", _request_params, lambda: ({}, "{}")),
    ("tags", _tags, lambda: ({}, "{}")),
    ("error_details", _error_details, lambda: (None, None)),
)


def validate_record(item, *, now: datetime) -> tuple[dict | None, dict | None]:
    """(clean, None) or (None, errors). `clean` has every RequestLog value the record sets;
    `cost` is None when the record did not carry one (it gets priced), `api_key` is the
    value as sent (the service masks secrets), JSON fields also come as `<name>_json` text."""
    if isinstance(item, BadLine):
        return None, {NON_FIELD: [item.message]}
    if not isinstance(item, dict):
        return None, {NON_FIELD: [f"Must be a JSON object, not {type(item).__name__}."]}
    errors: dict[str, list[str]] = {}
    clean: dict = {}
    get = item.get

    def run(name, parser, *args):
        try:
            clean[name] = parser(*args)
        except Invalid as exc:
            errors[name] = [str(exc)]

    for name, max_len in (("request_id", 255), ("model", 255)):
        value = get(name)
        if value is None:
            errors[name] = [REQUIRED]
        else:
            run(name, _required_text, value, max_len)
    status = get("status")
    if status is None:
        errors["status"] = [REQUIRED]
    elif isinstance(status, str) and status in STATUSES:
        clean["status"] = status
    else:
        errors["status"] = ["Must be 'success' or 'error'."]
    timestamp = get("timestamp")
    if timestamp is None:
        errors["timestamp"] = [REQUIRED]
    else:
        run("timestamp", _timestamp, timestamp, now)

    for name in ("prompt_tokens", "completion_tokens"):
        value = get(name)
        clean[name] = 0
        if value is not None:
            run(name, _int, value, bounds.BOUNDS[name])
    total = get("total_tokens")
    if "prompt_tokens" not in errors and "completion_tokens" not in errors:
        expected = clean["prompt_tokens"] + clean["completion_tokens"]
        total_max = bounds.BOUNDS["total_tokens"].maximum
        if total is None:
            if expected > total_max:
                errors["total_tokens"] = [f"prompt_tokens + completion_tokens must be at most {total_max}."]
            clean["total_tokens"] = expected
        else:
            run("total_tokens", _int, total, bounds.BOUNDS["total_tokens"])
            if "total_tokens" not in errors and clean["total_tokens"] != expected:
                errors["total_tokens"] = [
                    f"Must equal prompt_tokens + completion_tokens ({expected}), got {clean['total_tokens']}."
                ]

    cost = get("cost")
    clean["cost"] = None
    if cost is not None:
        run("cost", parse_cost, cost)

    for name, parser, default in _OPTIONAL:
        value = get(name)
        if value is None:
            clean[name] = default
        else:
            run(name, parser, value)

    # JSON fields: the object, and as `<name>_json` the text that goes into the jsonb column.
    for name, parser, empty in _JSON_FIELDS:
        value = get(name)
        if value is None:
            clean[name], clean[name + "_json"] = empty()
        else:
            try:
                clean[name], clean[name + "_json"] = parser(value)
            except Invalid as exc:
                errors[name] = [str(exc)]

    if errors:
        return None, errors
    return clean, None
