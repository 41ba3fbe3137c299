"""Each import format's row -> an ingest record (the field format of POST /api/v1/ingest).

A mapping returns `(record, errors)`: `errors` holds what the file itself got wrong and
validation cannot see (a JSON column that is not JSON, an unknown new-api log type); those
rows are rejected with these errors plus the validation errors of the rest. A mapping
returns SKIP for rows that are not usage records (new-api top-ups, admin and system
entries). Values are passed on as found when they cannot be converted, so that validation
rejects them with the same message as the ingest API. The mapping tables are in the README
("Importing logs").
"""

import json
import math
from datetime import UTC, datetime
from decimal import Decimal

from logs.exports.format import EXPORT_FIELDS, JSON_FIELDS
from logs.ingest.litellm import _dict, _first, litellm_to_record

SKIP = object()
MESSAGES_KEYS = ("messages", "response", "proxy_server_request")  # never copied anywhere
_INT_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens", "latency_ms")
_REQUIRED_TEXT = ("request_id", "timestamp", "model", "status")
NEW_API_TYPES = {2: "success", 5: "error"}
NEW_API_SKIPPED = {1: "top-up", 3: "manage", 4: "system"}
NEW_API_DEFAULT_QUOTA_PER_USD = 500_000


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _int(value):
    """An int from a CSV cell or a JSON number; blank -> None; anything else as found."""
    if _blank(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


def _number(value):
    """A float from a number or numeric text; None when it is neither."""
    if isinstance(value, bool) or _blank(value):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _seconds_to_ms(seconds: float):
    """Milliseconds, rounded; a NaN, infinite or overflowing value goes on as a float so that
    validation rejects latency_ms by name, as it does a native record's explicit latency."""
    ms = seconds * 1000
    return round(ms) if math.isfinite(ms) else ms


def _json_cell(row: dict, name: str, errors: dict):
    """A JSON column: objects from JSON files as they are, compact JSON text from CSV."""
    value = row.get(name)
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        return json.loads(value)
    except ValueError:
        errors[name] = ["Is not valid JSON text."]
        return None


# Meterlog's own export ---------------------------------------------------------------


def meterlog_row(row: dict, *, from_csv: bool) -> tuple[dict, dict]:
    """An export row is an ingest record already; CSV cells only need their types back."""
    if not from_csv:
        return {name: row[name] for name in EXPORT_FIELDS if name in row}, {}
    errors: dict = {}
    record = {}
    for name in EXPORT_FIELDS:
        if name not in row:
            continue
        value = row[name]
        if name in JSON_FIELDS:
            value = _json_cell(row, name, errors)
        elif name in _INT_FIELDS:
            value = _int(value)
        elif value == "" and name not in _REQUIRED_TEXT:
            value = None  # an empty CSV cell: unpriced cost, absent optional text
        record[name] = value
    return record, errors


# LiteLLM LiteLLM_SpendLogs -----------------------------------------------------------


def _litellm_time(value) -> tuple[object, float | None]:
    """(timestamp for validation, epoch seconds). LiteLLM stores naive UTC datetimes; an
    ISO text without an offset is read as UTC, epoch numbers (or their text) as seconds."""
    number = _number(value)
    if number is not None:
        return number, number
    if not isinstance(value, str) or _blank(value):
        return value, None
    text = value.strip()
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return value, None  # validation names the problem
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), ts.timestamp()


def _litellm_tags(value, errors: dict) -> dict | None:
    """request_tags ["prod", "team:search"] -> {"prod": "true", "team": "search"}."""
    if isinstance(value, str):
        value = _json_cell({"request_tags": value}, "request_tags", errors)
    if not value:
        return None
    if not isinstance(value, list):
        errors["request_tags"] = ["Must be a JSON list of tags."]
        return None
    tags = {}
    for tag in value:
        key, sep, tag_value = str(tag).partition(":")
        tags[key] = tag_value if sep else "true"
    return tags


def litellm_row(row: dict) -> tuple[dict, dict]:
    errors: dict = {}
    metadata = _json_cell(row, "metadata", errors)
    metadata = dict(_dict(metadata))
    error = _dict(metadata.get("error_information"))
    timestamp, start = _litellm_time(row.get("startTime"))
    _end_value, end = _litellm_time(row.get("endTime"))
    status = row.get("status")
    if _blank(status):
        status = "failure" if error else "success"
    # The spend log's api_key column is the hashed key; the alias, when set, reads better.
    metadata["user_api_key_hash"] = _first(row.get("api_key"), metadata.get("user_api_key"))
    payload = {
        "id": row.get("request_id"),
        "startTime": start,
        "endTime": end,
        "model_group": row.get("model_group"),
        "model": row.get("model"),
        "status": status,
        "prompt_tokens": _int(row.get("prompt_tokens")),
        "completion_tokens": _int(row.get("completion_tokens")),
        "total_tokens": _int(row.get("total_tokens")),
        # 0 is a spend LiteLLM computed (a free or failed call): it stays 0, not unpriced.
        "response_cost": None if _blank(row.get("spend")) else row.get("spend"),
        "metadata": metadata,
        "requester_ip_address": _first(row.get("requester_ip_address")),
        "error_information": error,
    }
    record = litellm_to_record(payload)
    record["timestamp"] = timestamp
    tags = _litellm_tags(row.get("request_tags"), errors)
    if tags:
        record["tags"] = tags
    return record, errors


# new-api / one-api `logs` ------------------------------------------------------------


def new_api_row(row: dict, *, quota_per_usd: Decimal | None = None):
    errors: dict = {}
    log_type = _int(row.get("type"))
    if log_type in NEW_API_SKIPPED:
        return SKIP
    status = NEW_API_TYPES.get(log_type)
    if status is None:
        # Reported on the field the type maps to (no "status" column exists in the file).
        errors["status"] = [f"Unknown new-api log type {row.get('type')!r} (2 = consume, 5 = error)."]
    row_id = row.get("id")
    request_id = _first(row.get("request_id"), f"newapi-{row_id}" if not _blank(row_id) else None)
    record = {
        "request_id": request_id,
        "timestamp": _int(row.get("created_at")),
        "model": row.get("model_name"),
        "status": status,
        "prompt_tokens": _int(row.get("prompt_tokens")),
        "completion_tokens": _int(row.get("completion_tokens")),
        "api_key": _first(row.get("token_name")),
        "ip_address": _first(row.get("ip")),
    }
    use_time = _number(row.get("use_time"))
    record["latency_ms"] = _seconds_to_ms(use_time) if use_time is not None else _int(row.get("use_time"))
    if quota_per_usd is not None and not _blank(row.get("quota")):
        try:
            record["cost"] = str(Decimal(str(row["quota"]).strip()) / quota_per_usd)
        except ArithmeticError:  # not a number, or a quotient past Decimal's exponent range
            record["cost"] = row["quota"]  # validation: "Must be a number or a decimal string."
    if log_type == 5:
        record["error_message"] = _first(row.get("content"))
    other = _json_cell(row, "other", errors)
    if isinstance(other, dict) and other:
        record["request_params"] = other  # validation strips prompt keys at every depth
    return record, errors


FORMATS = ("meterlog-csv", "meterlog-ndjson", "litellm", "new-api")


def detect(keys: set[str]) -> str | None:
    """The format whose columns/keys these are (the container decides meterlog-csv/ndjson)."""
    if {"created_at", "model_name", "type"} <= keys:
        return "new-api"
    if {"request_id", "startTime"} <= keys and ({"spend", "call_type", "model_group"} & keys):
        return "litellm"
    if {"request_id", "timestamp", "model", "status"} <= keys:
        return "meterlog"
    return None
