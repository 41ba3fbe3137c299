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

# csv_safe (a spreadsheet-safe CSV): a text cell starting with one of these gets a leading '
# so a spreadsheet shows it as text instead of evaluating it (OWASP "CSV injection"). Only
# the free-text columns: numbers (a "-" there is a minus sign), timestamps, IP addresses and
# the JSON cells (they start with { [ " or a digit or minus of a JSON number) never do.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_TEXT_FIELDS = ("request_id", "model", "status", "api_key", "user_agent", "error_code", "error_message")
