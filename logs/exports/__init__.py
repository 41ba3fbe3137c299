"""Exports of the filtered log: CSV, JSON (array) or NDJSON, optionally gzip, streamed; or a
zip of one gzip file per calendar month. Columns / keys follow `EXPORT_FIELDS`, which the
importer reads back; values are byte for byte the API's (`log_record`).

format.py holds the field order (shared with logs.imports and the archive), request.py
parses and validates a request (format, compress, split, csv_safe and the log list's filters),
chunks.py reads the rows in keyset chunks and gives the bytes of one file, encoded by
encoders.py or, for CSV on PostgreSQL, copied by sql.py (`COPY ... TO STDOUT`); zips.py
writes the zip by month from those files, and service.py starts an export (stream or job,
file or zip) and answers the download. Large browser exports run as jobs (jobs.py, the
tasks in logs.tasks); views.py is the console's export pages.

The API and the log list use the entry points below.
"""

from logs.exports.request import (
    COMPRESSIONS,
    CSV_SAFE_VALUES,
    SPLITS,
    ExportRequest,
    filter_pairs,
    parse_export_request,
    spans_months,
)
from logs.exports.service import export_response, start_export

__all__ = [
    "COMPRESSIONS",
    "CSV_SAFE_VALUES",
    "SPLITS",
    "ExportRequest",
    "export_response",
    "filter_pairs",
    "parse_export_request",
    "spans_months",
    "start_export",
]
