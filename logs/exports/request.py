"""What an export request asks for: its format, compression, split, csv_safe and the log list's
filters (the shared FilterSet), validated; the filters as stored on an ExportRecord or a job
(absolute time bounds); the file name and content type of the answer.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.http import QueryDict
from django.utils import timezone

from console.models import Account
from logs import selectors
from logs.filters import RequestLogFilterSet, filter_errors
from logs.models import ExportFormat, ExportSplit
from logs.ranges import time_bounds

CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.NDJSON: "application/x-ndjson",
}
GZIP_CONTENT_TYPE = "application/gzip"
ZIP_CONTENT_TYPE = "application/zip"
COMPRESSIONS = ("gzip",)
SPLITS = ("month",)
# csv_safe: "1"/"true" prefix formula-like CSV cells with ' (encoders.safe_cell); "0"/"false"
# or left out export the values as stored (the importer reads them back unchanged).
CSV_SAFE_VALUES = {"1": True, "true": True, "0": False, "false": False}
# split=month over an explicit start/end: at most this many members (ten years).
MAX_MONTHS = 120


@dataclass
class ExportRequest:
    format: str
    compress: bool
    filterset: RequestLogFilterSet
    split: str = ExportSplit.NONE  # "month": a zip of one gzip file per calendar month (logs.exports.zips)
    csv_safe: bool = False  # CSV cells starting with = + - @ \t \r get a leading ' (spreadsheets)


def parse_export_request(*, account: Account, params) -> tuple[ExportRequest | None, dict[str, list[str]]]:
    """Validate `format`, `compress`, `split`, `csv_safe` and the log list's filters (the shared FilterSet);
    returns (request, {}) or (None, {parameter: [messages]}) with every bad parameter."""
    errors: dict[str, list[str]] = {}
    export_format = params.get("format") or ExportFormat.CSV
    if export_format not in ExportFormat.values:
        errors["format"] = [f"Unknown format {export_format!r}; use one of: {', '.join(ExportFormat.values)}."]
    compress = params.get("compress") or ""
    if compress and compress not in COMPRESSIONS:
        errors["compress"] = [f"Unknown compression {compress!r}; use gzip or leave it out."]
    split = params.get("split") or ""
    if split and split not in SPLITS:
        errors["split"] = [f"Unknown split {split!r}; use month or leave it out."]
    csv_safe = _csv_safe(params.get("csv_safe") or "", export_format, errors)
    filterset = selectors.filter_request_logs(account=account, params=params)
    if not filterset.is_valid():
        errors.update(filter_errors(filterset))
    elif split:
        start, end = filterset.form.cleaned_data.get("start"), filterset.form.cleaned_data.get("end")
        if start and end and _months_between(start, end) > MAX_MONTHS:
            errors["split"] = [f"split=month makes at most {MAX_MONTHS} files; narrow start/end."]
    if errors:
        return None, errors
    # A zip's members are always gzip files.
    compress = compress == "gzip" or bool(split)
    return ExportRequest(
        format=export_format, compress=compress, filterset=filterset, split=split, csv_safe=csv_safe
    ), {}


def _csv_safe(value: str, export_format: str, errors: dict) -> bool:
    """Refused, not ignored, for JSON / NDJSON: their values are typed and no spreadsheet
    evaluates them, and a client asking for it should learn that it does nothing there."""
    if not value:
        return False
    if value.lower() not in CSV_SAFE_VALUES:
        errors["csv_safe"] = [f"Unknown csv_safe value {value!r}; use 1 (or true) to turn it on, 0 or leave it out."]
        return False
    csv_safe = CSV_SAFE_VALUES[value.lower()]
    if csv_safe and export_format != ExportFormat.CSV and export_format in ExportFormat.values:
        errors["csv_safe"] = [f"csv_safe applies to CSV only; leave it out for format={export_format}."]
    return csv_safe


def _months_between(start: datetime, end: datetime) -> int:
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    return (end.year - start.year) * 12 + end.month - start.month + 1


def resolved_filters(*, export: ExportRequest, params, now: datetime | None = None) -> dict:
    """`filter_params` with the time bounds made absolute: start/end as UTC RFC 3339 (they may
    have been the viewer's local time) and a `range` preset turned into the start it meant
    now. A job run later by a worker (no viewer zone, another "now") or one month of a zip
    reads exactly the rows the request meant."""
    stored = filter_params(params)
    cleaned = export.filterset.form.cleaned_data
    stored.pop("range", None)
    start, end = time_bounds(cleaned.get("range"), cleaned.get("start"), cleaned.get("end"), now=now)
    for name, value in (("start", start), ("end", end)):
        if value is not None:
            stored[name] = utc_text(value)
    return stored


def utc_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def params_querydict(filters: dict, **extra: str) -> QueryDict:
    """A stored filter dict ({name: value or [values]}) as request parameters."""
    params = QueryDict(mutable=True)
    for name, value in {**filters, **extra}.items():
        params.setlist(name, value if isinstance(value, list) else [value])
    return params


def rerun_params(record) -> QueryDict:
    """The export request that repeats an ExportRecord: its stored filters (absolute time
    bounds, so the same rows again plus any that arrived within them since) and options."""
    options = {"format": record.format}
    if record.split:
        options["split"] = record.split
    elif record.compress:
        options["compress"] = "gzip"
    if record.csv_safe:
        options["csv_safe"] = "1"
    return params_querydict(record.filters or {}, **options)


def spans_months(*, filterset: RequestLogFilterSet, now: datetime | None = None) -> bool:
    """Whether the filters cover more than a month (the menu then offers the zip by month):
    start (or the range preset) to end (or now); no start at all is the whole log."""
    if not filterset.is_valid():
        return False
    cleaned = filterset.form.cleaned_data
    now = now or timezone.now()
    start, end = time_bounds(cleaned.get("range"), cleaned.get("start"), cleaned.get("end"), now=now)
    if start is None:
        return True
    end = end or now
    return _months_between(start, end) > 1 and (end - start).days > 31


def filter_params(params) -> dict:
    """The filter parameters of a request's QueryDict as stored on the ExportRecord: known filter names
    only (format, compress, cursor and stray parameters are not filters)."""
    stored = {}
    for name in params:
        if name not in RequestLogFilterSet.base_filters:
            continue
        values = [value for value in params.getlist(name) if value != ""]
        if values:
            stored[name] = values[0] if len(values) == 1 else values
    return stored


def filter_pairs(params) -> list[tuple[str, str]]:
    """The filter parameters as (name, value) pairs, a repeated one once per value: the
    hidden fields of the console's CSV export form."""
    return [
        (name, value)
        for name, stored in filter_params(params).items()
        for value in (stored if isinstance(stored, list) else [stored])
    ]


def file_name(*, account: Account, export: ExportRequest, now=None) -> str:
    now = (now or timezone.now()).astimezone(UTC)
    if export.split:
        return f"meterlog-{account.slug}-{now:%Y%m%dT%H%M%S}-by-month.zip"
    name = f"meterlog-{account.slug}-{now:%Y%m%dT%H%M%S}.{export.format}"
    return f"{name}.gz" if export.compress else name


def content_type(export: ExportRequest) -> str:
    if export.split:
        return ZIP_CONTENT_TYPE
    return GZIP_CONTENT_TYPE if export.compress else CONTENT_TYPES[export.format]
