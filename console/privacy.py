"""What privacy mode and log encryption mean, in one place: the fields ingest drops, the IP
prefix it keeps, the fields it encrypts (logs.ingest.services and logs.encryption apply them)
and the tables the settings pages show owners."""

# Stored empty (request_params "{}", user_agent "", error_details NULL) in privacy mode.
DROPPED_FIELDS = ("request_params", "user_agent", "error_details")
# Only the network of the client IP is kept: the /24 of an IPv4, the /48 of an IPv6 address.
IP_PREFIX = {4: 24, 6: 48}

# (field, stored normally, stored in privacy mode): the settings page's table.
RECORDED_FIELDS = (
    ("request_id, timestamp, model, status", "Yes", "Yes"),
    ("prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens", "Yes", "Yes"),
    ("cost, latency_ms", "Yes", "Yes"),
    ("api_key", "Masked (e.g. sk-…a1b2)", "Masked (e.g. sk-…a1b2)"),
    ("tags", "Yes", "Yes"),
    ("error_code, error_message", "Yes (secrets masked)", "Yes (secrets masked)"),
    ("ip_address", "Full address", "Network only: /24 (IPv4, 203.0.113.0), /48 (IPv6, 2001:db8:abcd::)"),
    ("request_params", "Yes, without prompt keys (messages, prompt, …); secrets masked", "Not stored"),
    ("user_agent", "Yes (secrets masked)", "Not stored"),
    ("error_details", "Yes (secrets masked)", "Not stored"),
    ("Prompt and completion text (messages, prompt, response, …)", "Never stored", "Never stored"),
)

# Stored encrypted when the account has log encryption on (logs.encryption): unreadable in the
# database, shown decrypted by the console, the API and exports; no filter or search reads them.
ENCRYPTED_FIELDS = ("request_params", "user_agent", "error_details")

# (field, how it is stored with encryption on, filter that reads it): the encryption page's table.
ENCRYPTION_FIELDS = (
    ("request_params", "Encrypted", "None (cannot be searched)"),
    ("user_agent", "Encrypted", "None (cannot be searched)"),
    ("error_details", "Encrypted", "None (cannot be searched)"),
    ("request_id", "Plain", "Request id, search"),
    ("timestamp", "Plain", "Time range"),
    ("model", "Plain", "Model"),
    ("status", "Plain", "Status"),
    ("prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens", "Plain", "Tokens"),
    ("cost", "Plain", "Cost, unpriced"),
    ("latency_ms", "Plain", "–"),
    ("api_key", "Plain (masked when it is a secret)", "API key"),
    ("ip_address", "Plain (a prefix in privacy mode)", "IP"),
    ("tags", "Plain", "Tag"),
    ("error_code", "Plain", "Error code"),
    ("error_message", "Plain (secrets masked)", "Search"),
)
