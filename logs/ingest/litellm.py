"""LiteLLM's generic_api logger -> Meterlog's ingest record.

LiteLLM POSTs `StandardLoggingPayload` objects. The mapping only reads what it needs and
never copies `messages` or `response`: the prompt and the completion text stay out.
A payload that is not an object is passed through unchanged, so that validation rejects
it by index like any other bad item.
"""

from logs.ingest import bounds

STATUS = {"success": "success", "failure": "error"}


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _first(*values):
    """The first value that is neither None nor an empty string."""
    for value in values:
        if value is not None and value != "":
            return value
    return None


def _latency_ms(start, end) -> int | None:
    """round((endTime - startTime) x 1000). Latency is optional in the contract, so times
    that give none the column can hold (missing, not numbers, NaN/inf, end before start,
    1.7e308) drop only the latency: the usage record is kept. startTime is the timestamp,
    which validation still rejects by name when it is absurd."""
    for value in (start, end):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
    try:
        return bounds.latency_ms(end - start)
    except OverflowError:  # an int too large for a float
        return None


def litellm_to_record(payload: dict) -> dict:
    """One StandardLoggingPayload as an ingest record (see the module docstring)."""
    if not isinstance(payload, dict):
        return payload
    metadata = _dict(payload.get("metadata"))
    usage = _dict(metadata.get("usage_object")) or _dict(payload.get("usage_object"))
    error = _dict(payload.get("error_information"))
    status = payload.get("status")

    record = {
        "request_id": payload.get("id"),
        "timestamp": payload.get("startTime"),
        "model": _first(payload.get("model_group"), payload.get("model")),
        # Unknown statuses go through as sent, so validation names them.
        "status": STATUS.get(status, status) if isinstance(status, str) else status,
        "prompt_tokens": payload.get("prompt_tokens"),
        "completion_tokens": payload.get("completion_tokens"),
        "total_tokens": payload.get("total_tokens"),
        # 0.0 is a price LiteLLM computed (a free or failed call), not "unknown": keep it.
        "cost": payload.get("response_cost"),
        "api_key": _first(metadata.get("user_api_key_alias"), metadata.get("user_api_key_hash")),
        "ip_address": _first(payload.get("requester_ip_address"), metadata.get("requester_ip_address")),
        "user_agent": _first(metadata.get("user_agent"), payload.get("user_agent")),
        "latency_ms": _latency_ms(payload.get("startTime"), payload.get("endTime")),
        # Prompt keys inside model_parameters are stripped by validation like any request_params.
        "request_params": payload.get("model_parameters"),
        "error_code": _first(error.get("error_code")),
        "error_message": _first(error.get("error_message")),
    }
    cached = _dict(usage.get("prompt_tokens_details")).get("cached_tokens")
    if cached is not None:
        record["cached_tokens"] = cached
    reasoning = _dict(usage.get("completion_tokens_details")).get("reasoning_tokens")
    if reasoning is not None:
        record["reasoning_tokens"] = reasoning
    details = {key: error[key] for key in ("error_class", "llm_provider") if _first(error.get(key)) is not None}
    if details:
        record["error_details"] = details
    return record
