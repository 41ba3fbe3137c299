"""Logging filters named in settings.LOGGING."""

import logging


class NoClientErrors(logging.Filter):
    """Drops django.request's records of 4xx answers (Not Found, Forbidden, Bad Request,
    Unauthorized...): the server's access log has each request once already."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        return not (isinstance(status, int) and 400 <= status < 500)
