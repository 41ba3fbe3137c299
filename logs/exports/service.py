"""Starting an export: the size check (stream or job), the body (one file or the zip by
month), the ExportRecord of a streamed download and the download response the API and the
page share; the account's past exports.
"""

from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from console.audit import Actor, record_event
from console.models import Account, AuditAction
from logs import selectors
from logs.exports.chunks import RowCounter, file_body
from logs.exports.request import ExportRequest, content_type, file_name, filter_params, resolved_filters
from logs.exports.zips import zip_by_month
from logs.filters import RequestLogFilterSet
from logs.models import ExportRecord, ExportSplit


def count_at_most(*, filterset: RequestLogFilterSet, cap: int) -> int:
    """The filtered row count, but at most cap + 1: "more than cap" without counting them all
    (the statement stops after cap + 1 rows). Raises QueryTimeout past the statement timeout."""
    queryset = filterset.qs.order_by()
    with selectors.statement_timeout():
        return queryset[: cap + 1].count()


def is_large(*, filterset: RequestLogFilterSet) -> bool:
    """More rows than METERLOG_EXPORT_ASYNC_ROWS: the browser gets a job, not a stream. A set
    that cannot even be counted to the threshold within the statement timeout is large too."""
    threshold = settings.METERLOG_EXPORT_ASYNC_ROWS
    try:
        return count_at_most(filterset=filterset, cap=threshold) > threshold
    except selectors.QueryTimeout:
        return True


def start_export(
    *, account: Account, export: ExportRequest, params, user=None, token_hint: str = "", ip: str | None = None
) -> Iterator[bytes]:
    """Record the export and return the generator of its bytes.

    The first read runs here, before the response starts: a filter that runs past the
    statement timeout raises `selectors.QueryTimeout` to the view, which can still answer
    with an error status instead of a truncated file.
    """
    counter = RowCounter()
    # Nothing but the WSGI server reads this body, so CSV may overlap its COPY chunks.
    body = open_body(account=account, export=export, params=params, counter=counter, overlap=True)
    with transaction.atomic():
        record = ExportRecord.objects.create(
            account=account,
            user=user if user is not None and user.is_authenticated else None,
            token_hint=token_hint,
            format=export.format,
            compress=export.compress,
            split=export.split,
            csv_safe=export.csv_safe,
            filters=filter_params(params),
        )
        audit_export(record, via="api" if token_hint else "download", actor=Actor(user=record.user, ip=ip))
    return _stream(body, record=record, counter=counter)


def audit_export(record: ExportRecord, *, via: str, actor: Actor) -> None:
    """The access log's entry of an export: what was exported with which filters, by whom."""
    details = {
        "export_id": record.pk,
        "via": via,
        "format": record.format,
        "compress": record.compress,
        "split": record.split,
        "csv_safe": record.csv_safe,
        "filters": record.filters,
    }
    if record.token_hint:
        details["token"] = record.token_hint
    record_event(account=record.account, action=AuditAction.EXPORT_CREATED, actor=actor, details=details)


def open_body(
    *, account: Account, export: ExportRequest, params, counter: "RowCounter", overlap: bool = False
) -> Iterator[bytes]:
    """The bytes of the export (a single file, or the zip by month); the first query runs
    before this returns. `counter` counts the rows as they are encoded. `overlap`: see
    file_body (a single file only)."""
    if export.split == ExportSplit.MONTH:
        return zip_by_month(
            account=account, export=export, filters=resolved_filters(export=export, params=params), counter=counter
        )
    return file_body(
        export.filterset,
        export_format=export.format,
        compress=export.compress,
        counter=counter,
        overlap=overlap,
        csv_safe=export.csv_safe,
    )


def export_response(body: Iterator[bytes], *, account: Account, export: ExportRequest) -> StreamingHttpResponse:
    """The download response the API and the page share."""
    response = StreamingHttpResponse(body, content_type=content_type(export))
    response["Content-Disposition"] = f'attachment; filename="{file_name(account=account, export=export)}"'
    # Proxies (nginx) would otherwise buffer the whole file before passing it on.
    response["X-Accel-Buffering"] = "no"
    response["Cache-Control"] = "no-store"
    return response


def export_records(*, account: Account, user=None) -> QuerySet:
    """The account's exports, newest first: all of them (owners), or one user's own (a member
    following the job they started)."""
    records = ExportRecord.objects.filter(account=account)
    if user is not None:
        records = records.filter(user=user)
    return records.select_related("user").order_by("-created_at", "-id")


def _stream(body: Iterator[bytes], *, record: ExportRecord, counter: "RowCounter") -> Iterator[bytes]:
    for part in body:
        if part:
            yield part
    # Only reached when the whole body was sent: a client that disconnects closes the
    # generator at its `yield`, and the record keeps finished_at empty.
    record.rows = counter.rows
    record.finished_at = timezone.now()
    record.save(update_fields=["rows", "finished_at"])
