"""Errors shared by every app's pages and API (kept in console, the lowest layer)."""


class QueryTimeout(Exception):
    """A log query ran past LOG_SEARCH_TIMEOUT_MS; the caller tells the user to narrow it.
    The API answers it with a 422 (`console.api_errors`)."""

    message = "The search took too long. Narrow the time range or add a filter such as model or API key."


class EncryptionKeyError(Exception):
    """Log rows stored encrypted cannot be read or written: FIELD_ENCRYPTION_KEY is missing,
    malformed, or lacks the key a row was encrypted with (logs.encryption). Pages and the API
    answer it with a 503 and this message (console.middleware, console.api_errors), never a
    500 and never the token in place of the value."""

    status = 503
