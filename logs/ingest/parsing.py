"""Decoding an ingest body: size limits, gzip, JSON array or NDJSON.

Limits hold before any work is done: the raw body is read with a cap (never the whole
stream first; a chunked body, which has no Content-Length, is read the same way up to
MAX_BODY_BYTES + 1), gzip is inflated by logs.decompress, linear in the input, capped at
MAX_GZIP_MEMBERS members and stopping as soon as the output passes MAX_BODY_BYTES, so a
decompression bomb costs at most 20 MB of memory, never its full size.

NDJSON and bad lines: each line is one record, so a line that is not JSON is rejected by
index like any other invalid record (`BadLine`), and the other lines are still stored: a
gateway retrying a batch forever because of one corrupt line would lose every good record
behind it. Only when no line at all is JSON is the body answered with a 400 (it is not
NDJSON). Indexes count records, i.e. non-blank lines; the message names the 1-based line.
"""

import json
from dataclasses import dataclass

from logs import decompress

MAX_BODY_BYTES = 20 * 1024 * 1024
MAX_RECORDS = 10_000
# A gateway sends one gzip stream a batch; each member costs a new inflater (see logs.decompress).
MAX_GZIP_MEMBERS = 1_000
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"})
GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
_READ_CHUNK = 1024 * 1024


class BodyError(Exception):
    """The body cannot be used at all; the view answers `status` with `message`."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


def too_large(what: str) -> BodyError:
    return BodyError(what, status=413)


@dataclass(frozen=True)
class BadLine:
    """An NDJSON line that is not JSON: validation rejects it by its index."""

    line: int
    message: str


def read_body(stream, content_length: int | None, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read at most `limit` bytes from `stream`; one byte more means 413."""
    if content_length is not None and content_length > limit:
        raise too_large(f"Body is larger than {limit // (1024 * 1024)} MB.")
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise too_large(f"Body is larger than {limit // (1024 * 1024)} MB.")
    return b"".join(chunks)


def gunzip(data: bytes, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """Inflate gzip data (several members allowed) into at most `limit` bytes, else 413."""
    try:
        return decompress.gunzip(data, limit=limit, max_members=MAX_GZIP_MEMBERS)
    except decompress.TooLarge as exc:
        raise too_large(f"Body is larger than {limit // (1024 * 1024)} MB once decompressed.") from exc
    except decompress.TooManyMembers as exc:
        raise too_large(f"Body has more than {MAX_GZIP_MEMBERS:,} gzip members; send one gzip stream.") from exc
    except decompress.Truncated as exc:
        raise BodyError("Gzip body is truncated.") from exc
    except decompress.DecompressError as exc:
        raise BodyError(f"Body is {exc}.") from exc


def decode_content(data: bytes, content_encoding: str) -> bytes:
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding in GZIP_ENCODINGS:
        return gunzip(data)
    raise BodyError(f"Unsupported Content-Encoding {content_encoding!r}; send gzip or none.", status=415)


def media_type(content_type: str) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _loads(data):
    try:
        return json.loads(data)
    except RecursionError as exc:  # [[[[...]]]] deep enough to exhaust the stack
        raise ValueError("nested too deeply") from exc


def decode_json_array(data: bytes, *, allow_object: bool = False) -> list:
    if not data.strip():
        raise BodyError("Body is empty; send a JSON array of records.")
    try:
        value = _loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BodyError(
            f"Body is not valid JSON ({exc}). Send a JSON array, or NDJSON with Content-Type: application/x-ndjson."
        ) from exc
    if allow_object and isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise BodyError(f"Body must be a JSON array of records, not a JSON {type(value).__name__}.")
    if len(value) > MAX_RECORDS:
        raise too_large(f"Too many records: {len(value)} (at most {MAX_RECORDS} per request).")
    return value


def decode_ndjson(data: bytes) -> list:
    """One JSON value per line; blank lines are skipped; a bad line becomes a BadLine item."""
    lines = [(number, line) for number, line in enumerate(data.split(b"\n"), start=1) if line.strip()]
    if len(lines) > MAX_RECORDS:
        raise too_large(f"Too many records: {len(lines)} (at most {MAX_RECORDS} per request).")
    items, bad = [], 0
    for number, line in lines:
        try:
            items.append(_loads(line))
        except ValueError as exc:
            bad += 1
            items.append(BadLine(number, f"line {number} is not valid JSON ({exc})"))
    if items and bad == len(items):
        raise BodyError(f"Body is not NDJSON: {items[0].message}.")
    return items


def decode_records(data: bytes, content_type: str, *, lenient: bool = False) -> list:
    """The list of raw items in a (decompressed) body, by its media type.

    `lenient` (the LiteLLM endpoint) also takes a single object (LiteLLM's log_format
    "single") and NDJSON sent without the NDJSON media type (log_format "ndjson" behind a
    logger or proxy that labels every body application/json).
    """
    if media_type(content_type) in NDJSON_TYPES:
        return decode_ndjson(data)
    try:
        return decode_json_array(data, allow_object=lenient)
    except BodyError as exc:
        if lenient and exc.status == 400 and data.lstrip()[:1] == b"{":
            return decode_ndjson(data)
        raise


def _body_stream(request, meta):
    """The stream to read and its declared length. A chunked body has no Content-Length:
    Django then offers an empty stream, so it is read from wsgi.input itself, which the
    server (gunicorn) ends at the last chunk and says so with wsgi.input_terminated."""
    try:
        content_length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise BodyError("Invalid Content-Length header.") from exc
    if content_length or "chunked" not in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        return (request if content_length else None), content_length
    if not meta.get("wsgi.input_terminated"):
        # A server that hands over the raw socket (runserver): reading to the end would hang.
        raise BodyError("This server cannot read a chunked body; send a Content-Length header.", status=411)
    return meta["wsgi.input"], None


def parse_request_body(request, *, lenient: bool = False) -> list:
    """Items of an HTTP ingest request. Reads the raw stream: Django's request.body would
    refuse anything above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) with its own 400."""
    meta = request.META
    stream, content_length = _body_stream(request, meta)
    data = read_body(stream, content_length) if stream is not None else b""
    data = decode_content(data, meta.get("HTTP_CONTENT_ENCODING", ""))
    return decode_records(data, meta.get("CONTENT_TYPE", ""), lenient=lenient)
