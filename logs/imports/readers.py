"""Open an import file (plain or gzip, told by its magic bytes) and stream its rows.

Three containers, told by the first non-blank character of the (decompressed) text:
`[` a JSON array, `{` NDJSON (one object per line), anything else CSV with a header row.
Every container is read row by row, so a file of any size runs in flat memory: a CSV or
NDJSON line longer than MAX_LINE_CHARS, or a JSON array item longer than MAX_ITEM_CHARS,
is refused, not read whole. A JSON array is read a chunk at a time and decoded one item
at a time by the standard library's decoder (the same JSON as before: NaN reaches
validation and rejects only its row), so each item still gets the line number it starts
on and an error names its line and item.

Gzip is inflated as it is read by logs.decompress, capped at
METERLOG_IMPORT_MAX_DECOMPRESSED_BYTES of content and MAX_GZIP_MEMBERS members. The format
check (`sniff_container`, `header_keys`, run in the web process at upload) reads the first
HEAD_BYTES of content only; the whole file is read by the worker.

Rows come out as (line, row): `line` is the 1-based physical line the row starts on (for
CSV, the header is line 1), `row` a dict, or a `BadRow` when the row itself cannot be
decoded (a malformed NDJSON line, a JSON array item that is not an object).
"""

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from logs import decompress

GZIP_MAGIC = b"\x1f\x8b"
CSV, JSON_ARRAY, NDJSON = "csv", "json", "ndjson"
HEAD_BYTES = 1024 * 1024  # room for a first LiteLLM row carrying its messages
MAX_GZIP_MEMBERS = 100_000  # `cat`-ed gzip files; each member costs ~10 µs (logs.decompress)
MAX_LINE_CHARS = 32 * 1024 * 1024
# A JSON array is read a chunk at a time; one item (object) is held whole while decoded.
JSON_ARRAY_CHUNK_CHARS = 1024 * 1024
MAX_ITEM_CHARS = MAX_LINE_CHARS
# A CSV field may hold an error message of up to 64 KiB plus quoting; the default is 128 KiB.
csv.field_size_limit(16 * 1024 * 1024)


class FileFormatError(Exception):
    """The file cannot be read as any container (or breaks off mid-way)."""


@dataclass(frozen=True)
class BadRow:
    message: str
    raw: str = ""


def _open_binary(path: Path):
    raw = open(path, "rb")  # noqa: SIM115 (returned open; closed with the stream around it)
    magic = raw.read(2)
    raw.seek(0)
    if magic != GZIP_MAGIC:
        return raw
    limit = settings.METERLOG_IMPORT_MAX_DECOMPRESSED_BYTES
    return decompress.open_gzip(raw, limit=limit, max_members=MAX_GZIP_MEMBERS)


def open_text(path: Path) -> io.TextIOWrapper:
    """The file as text (UTF-8, a BOM is dropped), decompressed when it is gzip."""
    # newline="" keeps newlines inside quoted CSV fields as they are (the csv module's rule).
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="")


def _read_error(path: Path, exc: Exception) -> "FileFormatError":
    if isinstance(exc, decompress.TooLarge):
        return FileFormatError(
            f"{path.name} is {exc} (the limit is METERLOG_IMPORT_MAX_DECOMPRESSED_BYTES); split it into smaller files"
        )
    return FileFormatError(f"cannot read {path.name}: {exc}")


_READ_ERRORS = (OSError, EOFError, UnicodeDecodeError, csv.Error, decompress.DecompressError)


def read_head(path: Path) -> tuple[str, bool]:
    """The first HEAD_BYTES of the (decompressed) file as text, and whether that is all of it."""
    try:
        with _open_binary(path) as binary:
            data = binary.read(HEAD_BYTES + 1)
        complete = len(data) <= HEAD_BYTES
        # A cut may split a character: the decoder keeps its first bytes back unless final.
        return codecs.getincrementaldecoder("utf-8-sig")().decode(data[:HEAD_BYTES], final=complete), complete
    except _READ_ERRORS as exc:
        raise _read_error(path, exc) from exc


def sniff_container(path: Path) -> str:
    text, complete = read_head(path)
    head = text.lstrip()
    if not head:
        raise FileFormatError(f"{path.name} is empty" if complete else f"{path.name} starts with over 1 MB of blanks")
    if head[0] == "[":
        return JSON_ARRAY
    if head[0] == "{":
        return NDJSON
    return CSV


def iter_rows(path: Path, container: str) -> Iterator[tuple[int, dict | BadRow]]:
    with open_text(path) as text:
        try:
            yield from _rows(text, container)
        except _READ_ERRORS as exc:
            raise _read_error(path, exc) from exc


def _rows(text, container: str) -> Iterator[tuple[int, dict | BadRow]]:
    if container == JSON_ARRAY:
        return _json_array_rows(text)
    lines = _bounded_lines(text)
    return _csv_rows(lines) if container == CSV else _ndjson_rows(lines)


def header_keys(path: Path, container: str) -> set[str] | None:
    """The CSV header's columns, or the keys of the first JSON object (for format detection),
    from the file's first HEAD_BYTES; None when its first row does not end within them."""
    text, complete = read_head(path)
    if not complete and container != JSON_ARRAY:
        text = text[: text.rfind("\n") + 1]  # whole lines only: a cut line would lose columns
    try:
        for _line, row in _rows(io.StringIO(text, newline=""), container):
            if isinstance(row, dict):
                return set(row)
    except csv.Error as exc:
        raise _read_error(path, exc) from exc
    except FileFormatError:
        if complete:
            raise
        return None  # the first JSON item is cut at HEAD_BYTES
    return set() if complete else None


def _bounded_lines(text) -> Iterator[str]:
    """The text's lines, refusing one longer than MAX_LINE_CHARS instead of reading it whole."""
    number = 0
    while line := text.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise FileFormatError(f"line {number} is longer than {MAX_LINE_CHARS // (1024 * 1024)} MB")
        yield line


def _csv_rows(text) -> Iterator[tuple[int, dict | BadRow]]:
    reader = csv.DictReader(text)
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        if None in row:  # more fields than the header has columns
            yield line, BadRow(f"Has {len(reader.fieldnames) + len(row[None])} fields, the header has "
                               f"{len(reader.fieldnames)}.")  # fmt: skip
            continue
        # A short row (DictReader fills the missing columns with None) keeps what it has.
        yield line, {key: value for key, value in row.items() if value is not None}


def _ndjson_rows(text) -> Iterator[tuple[int, dict | BadRow]]:
    for line, raw in enumerate(text, start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw.rstrip("\r\n"))
        except ValueError as exc:
            yield line, BadRow(f"Not valid JSON: {exc}.", raw.rstrip("\r\n"))
            continue
        yield line, item if isinstance(item, dict) else BadRow(f"Must be a JSON object, not {type(item).__name__}.")


def _json_array_rows(text) -> Iterator[tuple[int, dict | BadRow]]:
    """The items of a JSON array, read a chunk at a time: only the item being decoded and one
    chunk are in memory, whatever the file's size."""
    array = _ArrayText(text)
    array.skip_space()
    if array.at_end() or array.buf[array.pos] != "[":
        raise FileFormatError(f"expected '[' to start the JSON array at line {array.line}")
    array.advance(array.pos + 1)
    number = 0
    expect_item = True
    while True:
        array.skip_space()
        if array.at_end():
            raise FileFormatError(f"the JSON array is not closed (line {array.line}, after {number:,} items)")
        char = array.buf[array.pos]
        if char == "]":  # after a trailing comma too, as before
            array.advance(array.pos + 1)
            array.skip_space()
            if not array.at_end():
                raise FileFormatError(f"text after the end of the JSON array (line {array.line})")
            return
        if not expect_item:
            if char != ",":
                raise FileFormatError(
                    f"expected ',' or ']' in the JSON array at line {array.line} (after item {number:,})"
                )
            array.advance(array.pos + 1)
            expect_item = True
            continue
        number += 1
        line, item = array.line, array.decode_item(number)
        yield line, item if isinstance(item, dict) else BadRow(f"Must be a JSON object, not {type(item).__name__}.")
        expect_item = False


class _ArrayText:
    """The text of a JSON array as a window that slides over the file: `buf[pos:]` is what is
    not read yet, `line` the line number at `pos`."""

    def __init__(self, text):
        self.text, self.buf, self.pos, self.line, self.eof = text, "", 0, 1, False
        self.decoder = json.JSONDecoder()

    def more(self, at_least: int = 0) -> bool:
        """Drop what was read and append the next chunk; False at the end of the file."""
        chunk = self.text.read(max(at_least, JSON_ARRAY_CHUNK_CHARS))
        if not chunk:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        return True

    def advance(self, end: int) -> None:
        self.line += self.buf.count("\n", self.pos, end)
        self.pos = end

    def skip_space(self) -> None:
        while True:
            self.advance(_skip_space(self.buf, self.pos))
            if self.pos < len(self.buf) or not self.more():
                return

    def at_end(self) -> bool:
        return self.pos >= len(self.buf)

    def decode_item(self, number: int):
        """The item starting at `pos`, reading more of the file while it may be cut by the
        window's end; at most MAX_ITEM_CHARS of it are held."""
        while True:
            try:
                item, end = self.decoder.raw_decode(self.buf, self.pos)
            except ValueError as exc:
                if self.eof or not _maybe_cut(exc, self.buf):
                    at = self.line + self.buf.count("\n", self.pos, exc.pos)
                    raise FileFormatError(
                        f"not valid JSON in the array at line {at} (item {number:,}, which starts at line "
                        f"{self.line}): {exc.msg}"
                    ) from exc
            else:
                if end < len(self.buf) or self.eof:  # a number at the window's end may go on
                    self.advance(end)
                    return item
            if len(self.buf) - self.pos > MAX_ITEM_CHARS:
                raise FileFormatError(
                    f"item {number:,} of the JSON array (line {self.line}) is longer than "
                    f"{MAX_ITEM_CHARS // (1024 * 1024)} MB"
                )
            # Doubling what is held: an item spread over many chunks is decoded O(log n) times.
            self.more(len(self.buf) - self.pos)


def _maybe_cut(exc: ValueError, buf: str) -> bool:
    """Whether a decoding error may come from the window ending inside the item: an open
    string, or an error within a token's length of the end ("tru", "1e", "\\u00")."""
    position = getattr(exc, "pos", len(buf))
    return getattr(exc, "msg", "").startswith("Unterminated string") or position >= len(buf) - 16


_SPACE = re.compile(r"[ \t\r\n]*")


def _skip_space(data: str, pos: int) -> int:
    # A regex, not a loop over characters: a bomb's gigabyte of blanks is skipped at C speed.
    return _SPACE.match(data, pos).end()
