"""A slow, obviously-correct rendering of records in Meterlog's export format, for tests
to compare the real exporter against and to write importable files with."""

import csv
import io
import json

from logs.exports.format import EXPORT_FIELDS, JSON_FIELDS


def compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def reference_csv(records: list[dict]) -> str:
    """EXPORT_FIELDS header, null -> empty cell, JSON fields as compact JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for record in records:
        cells = []
        for name in EXPORT_FIELDS:
            value = record[name]
            if value is None:
                cells.append("")
            elif name in JSON_FIELDS:
                cells.append(compact(value))
            else:
                cells.append(str(value))
        writer.writerow(cells)
    return buffer.getvalue()
