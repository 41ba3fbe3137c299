"""Open an import file (plain or gzip, told by its magic bytes) and stream its rows.

Three containers, told by the first non-blank character of the (decompressed) text:
`[` a JSON array, `{` NDJSON (one object per line), anything else CSV with a header row.
CSV and NDJSON are read row by row, so a file of any size runs in flat memory. A JSON
array is read into memory whole (exports of that shape are meant for small sets; use
NDJSON or CSV for big files) and then decoded one item at a time, so each item still
gets the line number it starts on.

Rows come out as (line, row): `line` is the 1-based physical line the row starts on (for
CSV, the header is line 1), `row` a dict, or a `BadRow` when the row itself cannot be
decoded (a malformed NDJSON line, a JSON array item that is not an object).
"""

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
CSV, JSON_ARRAY, NDJSON = "csv", "json", "ndjson"
# A CSV field may hold an error message of up to 64 KiB plus quoting; the default is 128 KiB.
csv.field_size_limit(16 * 1024 * 1024)


class FileFormatError(Exception):
    """The file cannot be read as any container (or breaks off mid-way)."""


@dataclass(frozen=True)
class BadRow:
    message: str
    raw: str = ""


def _open_binary(path: Path):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")


def open_text(path: Path) -> io.TextIOWrapper:
    """The file as text (UTF-8, a BOM is dropped), decompressed when it is gzip."""
    # newline="" keeps newlines inside quoted CSV fields as they are (the csv module's rule).
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="")


def sniff_container(path: Path) -> str:
    with open_text(path) as text:
        try:
            head = text.read(4096).lstrip()
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"cannot read {path.name}: {exc}") from exc
    if not head:
        raise FileFormatError(f"{path.name} is empty")
    if head[0] == "[":
        return JSON_ARRAY
    if head[0] == "{":
        return NDJSON
    return CSV


def iter_rows(path: Path, container: str) -> Iterator[tuple[int, dict | BadRow]]:
    readers = {CSV: _csv_rows, NDJSON: _ndjson_rows, JSON_ARRAY: _json_array_rows}
    with open_text(path) as text:
        try:
            yield from readers[container](text)
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise FileFormatError(f"cannot read {path.name}: {exc}") from exc


def header_keys(path: Path, container: str) -> set[str]:
    """The CSV header's columns, or the keys of the first JSON object (for format detection)."""
    for _line, row in iter_rows(path, container):
        if isinstance(row, dict):
            return set(row)
    return set()


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
    data = text.read()
    decoder = json.JSONDecoder()
    pos = data.index("[") + 1
    line = data.count("\n", 0, pos) + 1
    expect_item = True
    while True:
        skip = _skip_space(data, pos)
        line += data.count("\n", pos, skip)
        pos = skip
        if pos >= len(data):
            raise FileFormatError(f"the JSON array is not closed (line {line})")
        if data[pos] == "]":
            if _skip_space(data, pos + 1) != len(data):
                raise FileFormatError(f"text after the end of the JSON array (line {line})")
            return
        if not expect_item:
            if data[pos] != ",":
                raise FileFormatError(f"expected ',' or ']' in the JSON array at line {line}")
            pos += 1
            expect_item = True
            continue
        try:
            item, end = decoder.raw_decode(data, pos)
        except ValueError as exc:
            raise FileFormatError(f"not valid JSON in the array at line {line}: {exc}") from exc
        yield line, item if isinstance(item, dict) else BadRow(f"Must be a JSON object, not {type(item).__name__}.")
        line += data.count("\n", pos, end)
        pos = end
        expect_item = False


def _skip_space(data: str, pos: int) -> int:
    while pos < len(data) and data[pos] in " \t\r\n":
        pos += 1
    return pos
