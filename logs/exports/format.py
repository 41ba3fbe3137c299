"""Meterlog's own export format: the canonical field order shared by exports and imports.

CSV columns and JSON keys use the ingest field names, in this fixed order (documented in the
README), so an export can be imported back (`import_logs --format meterlog-csv|meterlog-ndjson`)
and gives the same rows. Timestamps are UTC RFC 3339 with microseconds and `Z`, costs are
decimal strings (empty / null when unpriced), JSON-valued fields are compact JSON text in CSV.
"""

EXPORT_FIELDS = (
    "request_id",
    "timestamp",
    "model",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "cached_tokens",
    "reasoning_tokens",
    "api_key",
    "ip_address",
    "user_agent",
    "latency_ms",
    "error_code",
    "error_message",
    "error_details",
    "request_params",
    "tags",
)
JSON_FIELDS = ("error_details", "request_params", "tags")
