"""The "by month" export: one zip holding one gzip file per calendar month (UTC) of the set.

`GET /api/v1/export?...&split=month` and the log list's "Zip, one file per month". Members
are named `meterlog-<account>-<YYYY-MM>.<format>.gz`, oldest month first, each an ordinary
export of that month's rows (newest first inside, as every export), so a member imports with
`import_logs` like any export.

Streamed with flat memory: zipfile writes to a sink that is drained after every write, and
an unseekable sink makes zipfile put each member's sizes and CRC in a data descriptor after
its bytes (and in the central directory at the end), so nothing is buffered or rewritten.
Members are ZIP_STORED: their bytes are already gzip, deflating them again gains nothing.
ZIP64 is forced because a member's size is unknown when its header is written.
"""

import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from console.models import Account
from logs import encryption, selectors
from logs.encryption_settings import may_have_encrypted_rows
from logs.exports.chunks import RowCounter, file_body
from logs.exports.request import ExportRequest, params_querydict, utc_text


class _Sink:
    """A write-only file object whose bytes are taken out with `drain()`."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(start: datetime) -> datetime:
    """The UTC moment the month after `start` (a month_start) begins."""
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def month_spans(*, account: Account, filters: dict) -> list[tuple[datetime, datetime, datetime]]:
    """(month, start, end) per calendar month of the set: `filters`' start/end (absolute, see
    request.resolved_filters), or where missing the oldest / newest matching row's time. Two
    index-ordered LIMIT 1 reads at most; no rows and no bounds gives no months."""
    start = _moment(filters.get("start"))
    end = _moment(filters.get("end"))
    if start is None or end is None:
        filterset = selectors.filter_request_logs(account=account, params=params_querydict(filters))
        filterset.is_valid()
        queryset = filterset.qs.values_list("timestamp", flat=True)
        with selectors.statement_timeout():
            if start is None:
                start = queryset.order_by("timestamp").first()
            if end is None:
                newest = queryset.order_by("-timestamp").first()
                end = newest + timedelta(microseconds=1) if newest is not None else None
    if start is None or end is None or end <= start:
        return []
    spans = []
    month = month_start(start)
    while month < end:
        following = next_month_start(month)
        spans.append((month, max(start, month), min(end, following)))
        month = following
    return spans


def _moment(text) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


def member_name(*, account: Account, export_format: str, month: datetime) -> str:
    return f"meterlog-{account.slug}-{month:%Y-%m}.{export_format}.gz"


def zip_by_month(*, account: Account, export: ExportRequest, filters: dict, counter: RowCounter) -> Iterator[bytes]:
    """The zip's bytes. The month bounds are read before this returns (a QueryTimeout reaches
    the view before the response starts); the rows as the zip is consumed."""
    spans = month_spans(account=account, filters=filters)
    if may_have_encrypted_rows(account):
        encryption.require_keys()  # each month's file_body runs mid-download: say it now
    return _zip(account=account, export=export, filters=filters, spans=spans, counter=counter)


def _zip(*, account, export, filters: dict, spans, counter) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for month, start, end in spans:
            params = params_querydict(filters, start=utc_text(start), end=utc_text(end))
            filterset = selectors.filter_request_logs(account=account, params=params)
            if not filterset.is_valid():  # cannot happen: the same filters passed already
                raise ValueError(f"month filters did not validate: {filterset.form.errors}")
            info = zipfile.ZipInfo(
                member_name(account=account, export_format=export.format, month=month),
                date_time=(month.year, month.month, 1, 0, 0, 0),
            )
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o600 << 16
            with archive.open(info, mode="w", force_zip64=True) as member:
                body = file_body(
                    filterset, export_format=export.format, compress=True, counter=counter, csv_safe=export.csv_safe
                )
                for part in body:
                    member.write(part)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()
