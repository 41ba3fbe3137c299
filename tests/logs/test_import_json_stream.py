"""JSON-array imports are streamed (logs.imports.readers): the array is read a chunk at a
time, so its size is bounded only by the decompressed-size cap; each item keeps the line
it starts on, and a malformed item fails the file naming its line and item."""

import io
import json
import tracemalloc

import pytest

from logs.imports import readers
from logs.imports.services import ImportFormatError, import_file
from logs.models import ImportJob, RequestLog
from logs.tasks import run_import_job
from tests.logs.test_import_page import _upload

pytestmark = pytest.mark.django_db

# Tokens a chunk boundary can cut: literals, exponents, escapes, an escaped quote, NaN.
TRICKY = (
    '{"a": true, "b": false, "c": null, "n": -1.5e-3, "big": 12345678901234567890,\n'
    '  "s": "caf\\u00e9 \\"quoted\\" \\\\ back", "nan": NaN, "inf": -Infinity, "list": [1, [2, {}]]}'
)


def _items(text: str) -> list[tuple[int, object]]:
    return list(readers._json_array_rows(io.StringIO(text)))


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_items_and_their_lines_are_the_same_for_any_chunk_size(monkeypatch, chunk):
    monkeypatch.setattr(readers, "JSON_ARRAY_CHUNK_CHARS", chunk)
    text = f"\n [\n{TRICKY},\n\n  {TRICKY} ,{{}}\n, 7 ]  \n"
    rows = _items(text)
    assert [line for line, _row in rows] == [3, 6, 7, 8]
    expected = json.loads(TRICKY)
    first, second = rows[0][1], rows[1][1]
    assert json.dumps(first) == json.dumps(expected) == json.dumps(second)  # NaN == NaN as text
    assert first["s"] == 'café "quoted" \\ back' and first["big"] == 12345678901234567890
    assert rows[2][1] == {}
    assert rows[3][1] == readers.BadRow("Must be a JSON object, not int.")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{}, {}", "the JSON array is not closed (line 1, after 2 items)"),
        ('[{"a": 1}\n {"b": 2}]', "expected ',' or ']' in the JSON array at line 2 (after item 1)"),
        (
            '[{"a": 1},\n{"b": 2,\n "c": }]',
            "not valid JSON in the array at line 3 (item 2, which starts at line 2): Expecting value",
        ),
        (
            '[{"a": "open string}]',
            "not valid JSON in the array at line 1 (item 1, which starts at line 1): Unterminated string starting at",
        ),
        ("[{}] {}", "text after the end of the JSON array (line 1)"),
    ],
)
def test_malformed_arrays_name_the_line_and_item(monkeypatch, text, message):
    monkeypatch.setattr(readers, "JSON_ARRAY_CHUNK_CHARS", 4)
    with pytest.raises(readers.FileFormatError) as caught:
        _items(text)
    assert str(caught.value) == message


def test_an_item_longer_than_the_cap_is_refused_without_reading_on(monkeypatch):
    monkeypatch.setattr(readers, "JSON_ARRAY_CHUNK_CHARS", 16)
    monkeypatch.setattr(readers, "MAX_ITEM_CHARS", 1000)
    reads = []

    class Counting(io.StringIO):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    text = '[{"a": 1},\n{"b": "' + "x" * 100_000 + '"}]'
    with pytest.raises(readers.FileFormatError, match=r"item 2 of the JSON array \(line 2\) is longer than 0 MB"):
        list(readers._json_array_rows(Counting(text)))
    assert sum(reads) < 3000  # stopped at the cap, not at the end of the 100 KB item


def _record(n: int) -> dict:
    return {"request_id": f"js-{n:05d}", "timestamp": f"2026-11-20T12:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "model": "gpt-4o-mini", "status": "success", "prompt_tokens": n, "completion_tokens": 1,
            "total_tokens": n + 1, "cost": "0.000001", "api_key": "team-a"}  # fmt: skip


def test_an_array_far_larger_than_the_item_cap_and_the_chunk_imports_every_row(acme, tmp_path, monkeypatch):
    # Before: an array was read whole, up to JSON_ARRAY_MAX_CHARS; now only an item is held.
    monkeypatch.setattr(readers, "JSON_ARRAY_CHUNK_CHARS", 1000)
    monkeypatch.setattr(readers, "MAX_ITEM_CHARS", 4000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps([_record(n) for n in range(3000)], indent=1))
    assert path.stat().st_size > 100 * readers.MAX_ITEM_CHARS
    report = import_file(account=acme, path=path, fmt="auto", batch_size=500)
    assert (report.format, report.rows, report.accepted, report.rejected_count) == ("meterlog-ndjson", 3000, 3000, 0)
    stored = RequestLog.objects.filter(account=acme)
    assert stored.count() == 3000
    assert sum(stored.values_list("prompt_tokens", flat=True)) == sum(range(3000))


def test_reading_a_large_array_holds_about_one_chunk(tmp_path):
    path = tmp_path / "large.json"
    row = json.dumps(_record(1))
    with path.open("w") as out:  # 12 MB: read whole it held 24 MB and more
        out.write("[" + ",\n".join([row] * 60_000) + "]")
    assert path.stat().st_size > 12 * 1024 * 1024
    tracemalloc.start()
    try:
        count = sum(1 for _row in readers.iter_rows(path, readers.JSON_ARRAY))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 60_000
    # A few 1 MB windows (5.3 MB measured, the same for 34 MB); read whole it was 2x the file.
    assert peak < 8 * 1024 * 1024


def test_malformed_json_mid_array_fails_the_job_and_keeps_the_batches_before_it(
    client, acme, alice, settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    settings.METERLOG_IMPORT_DIR = tmp_path / "imports"
    monkeypatch.setattr(readers, "JSON_ARRAY_CHUNK_CHARS", 512)
    lines = ",\n".join(json.dumps(_record(n)) for n in range(2500))
    body = f"[\n{lines},\n" + '{"request_id": "js-bad", "model": }' + f",\n{json.dumps(_record(9999))}\n]"
    client.force_login(alice)
    response, _callbacks = _upload(client, "cut.json", body.encode(), django_capture_on_commit_callbacks)
    assert response.status_code == 302
    job = ImportJob.objects.get()
    run_import_job(job.pk)  # batches of 1,000: the first two are in when the fault is read
    job.refresh_from_db()
    assert job.state == "failed"
    assert job.error == (
        "not valid JSON in the array at line 2502 (item 2,501, which starts at line 2502): Expecting value "
        "(after 2,500 rows, 2,000 accepted)"
    )
    assert RequestLog.objects.filter(account=acme).count() == 2000
    assert not RequestLog.objects.filter(request_id="js-09999").exists()


def test_command_reports_the_fault_of_a_streamed_array(acme, tmp_path):
    path = tmp_path / "two.json"
    path.write_text(f"[{json.dumps(_record(1))},\n{json.dumps(_record(2))}\n{json.dumps(_record(3))}]")
    with pytest.raises(ImportFormatError, match=r"expected ',' or '\]' in the JSON array at line 3 \(after item 2\)"):
        import_file(account=acme, path=path, fmt="auto")
