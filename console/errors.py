"""Errors shared by every app's pages and API (kept in console, the lowest layer)."""


class QueryTimeout(Exception):
    """A log query ran past LOG_SEARCH_TIMEOUT_MS; the caller tells the user to narrow it.
    The API answers it with a 422 (`console.api_errors`)."""

    message = "The search took too long. Narrow the time range or add a filter such as model or API key."
