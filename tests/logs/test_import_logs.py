"""`manage.py import_logs` on the sample files of tests/fixtures/imports (DB tag h7).

Counts are exact, mapped values are checked row by row, bad rows come back with their
line numbers and the ingest API's own field errors, and a second import stores nothing.
"""

import csv
import gzip
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from console.models import ApiToken
from logs.api.serializers import log_record
from logs.exports.format import EXPORT_FIELDS
from logs.imports.services import import_file
from logs.ingest.services import ingest_records
from logs.models import ModelPrice, RequestLog
from tests.export_reference import reference_csv
from tests.factories import make_account

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"
pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_logs", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def rows(account) -> dict[str, RequestLog]:
    return {row.request_id: row for row in RequestLog.objects.filter(account=account)}


def object_lines(name: str, opener: str) -> list[int]:
    """Line numbers where the objects of a pretty-printed JSON array start."""
    text = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [n for n, line in enumerate(text, start=1) if line == opener]


def summary(report) -> tuple:
    return report.accepted, report.duplicates, report.skipped, report.rejected_count


def rejected_lines(report) -> list[tuple[int, dict]]:
    return [(r["line"], r["errors"]) for r in report.rejected]


# Meterlog's own export ----------------------------------------------------------------


def test_meterlog_csv_sample(acme):
    report = import_file(account=acme, path=FIXTURES / "meterlog_export.csv", fmt="auto")
    assert report.format == "meterlog-csv" and report.rows == 6
    # The last row repeats the first: a duplicate, not a second row.
    assert summary(report) == (3, 1, 0, 2)
    assert rejected_lines(report) == [
        (6, {"total_tokens": ["Must equal prompt_tokens + completion_tokens (15), got 16."]}),
        (7, {"error_details": ["Is not valid JSON text."], "status": ["Must be 'success' or 'error'."]}),
    ]
    stored = rows(acme)
    assert sorted(stored) == ["chatcmpl-AbC1", "chatcmpl-AbC2", "chatcmpl-AbC3"]
    first = stored["chatcmpl-AbC1"]
    assert first.timestamp == datetime(2026, 11, 20, 9, 15, 2, 123456, tzinfo=UTC)
    assert (first.prompt_tokens, first.completion_tokens, first.total_tokens, first.cached_tokens) == (
        1200,
        340,
        1540,
        1024,
    )
    assert first.cost == Decimal("0.000384") and first.reasoning_tokens is None
    assert first.request_params == {"temperature": 0.2, "max_tokens": 512}
    assert first.tags == {"team": "search", "env": "prod"}
    assert (first.api_key, first.ip_address, first.user_agent, first.latency_ms) == (
        "sk-…9f2Q",
        "203.0.113.7",
        "openai-python/1.54.3",
        812,
    )
    # The field with a comma, quotes and a newline survives the CSV quoting.
    error = stored["chatcmpl-AbC2"]
    assert error.error_message == 'Overloaded, retrying "soon"\nupstream said: {"type":"overloaded_error"}'
    assert error.error_details == {"provider": "anthropic", "retries": 3}
    assert (error.status, error.error_code, error.cost, error.ip_address) == ("error", "529", 0, "2001:db8::1")
    # Empty cells: unpriced (no price exists for the model) and absent optional values.
    bare = stored["chatcmpl-AbC3"]
    assert (bare.cost, bare.latency_ms, bare.cached_tokens, bare.ip_address, bare.api_key) == (
        None,
        None,
        None,
        None,
        "",
    )


def test_meterlog_ndjson_sample(acme):
    report = import_file(account=acme, path=FIXTURES / "meterlog_export.ndjson", fmt="meterlog-ndjson")
    assert summary(report) == (3, 0, 0, 3)
    assert rejected_lines(report) == [
        (3, {"non_field_errors": ["Not valid JSON: Expecting value: line 1 column 43 (char 42)."]}),
        (4, {"model": ["This field is required."]}),
        (6, {"ip_address": ["Must be an IPv4 or IPv6 address."]}),
    ]
    stored = rows(acme)
    assert sorted(stored) == ["gen-7Yq1", "gen-7Yq2", "gen-7Yq5"]
    reasoning = stored["gen-7Yq2"]
    assert (reasoning.cached_tokens, reasoning.reasoning_tokens, reasoning.cost) == (128, 640, None)
    assert reasoning.timestamp == datetime(2026, 11, 21, 14, 0, 5, 250000, tzinfo=UTC)
    failed = stored["gen-7Yq5"]
    assert (failed.status, failed.error_code, failed.error_details) == (
        "error",
        "401",
        {"type": "invalid_request_error"},
    )


def test_rejections_carry_the_ingest_apis_errors(client, acme, globex):
    """The bad CSV row sent to POST /api/v1/ingest gets the same errors as the import."""
    report = import_file(account=acme, path=FIXTURES / "meterlog_export.csv", fmt="auto")
    with open(FIXTURES / "meterlog_export.csv", newline="") as fh:
        bad = next(row for row in csv.DictReader(fh) if row["request_id"] == "chatcmpl-AbC4")
    body = {k: v for k, v in bad.items() if v != ""}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens", "latency_ms"):
        body[name] = int(body[name])
    body["request_params"], body["tags"] = {}, {}
    token = ApiToken.generate(account=globex, scope="ingest")[1]
    response = client.post(
        "/api/v1/ingest", data=json.dumps([body]), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.json()["rejected"][0]["errors"] == report.rejected[0]["errors"]


# LiteLLM --------------------------------------------------------------------------------


def test_litellm_csv_sample(acme):
    report = import_file(account=acme, path=FIXTURES / "litellm_spendlogs.csv", fmt="auto")
    assert report.format == "litellm"
    assert summary(report) == (4, 0, 0, 2)
    assert rejected_lines(report) == [
        (6, {"prompt_tokens": ["Must be 0 or more."]}),
        (7, {"timestamp": ["Must be an RFC 3339 timestamp such as 2026-11-24T21:42:31.123456Z."]}),
    ]
    stored = rows(acme)
    ok = stored["chatcmpl-9x1"]
    # Naive startTime is UTC; model_group wins over model; the alias over the hashed key.
    assert ok.timestamp == datetime(2026, 11, 22, 8, 30, 1, 120000, tzinfo=UTC)
    assert (ok.model, ok.status, ok.cost, ok.latency_ms) == ("gpt-4o", "success", Decimal("0.00168"), 1335)
    assert (ok.prompt_tokens, ok.completion_tokens, ok.total_tokens, ok.cached_tokens) == (1800, 220, 2020, 1536)
    assert (ok.api_key, ok.ip_address, ok.user_agent) == ("search-prod", "203.0.113.50", "OpenAI/Python 1.54.3")
    assert ok.tags == {"prod": "true", "team": "search"} and ok.request_params == {}
    failure = stored["chatcmpl-9x2"]
    assert (failure.status, failure.cost, failure.error_code, failure.latency_ms) == ("error", 0, "429", 250)
    assert failure.error_message.startswith("litellm.RateLimitError: RateLimitError")
    assert failure.error_details == {"error_class": "RateLimitError", "llm_provider": "openai"}
    assert failure.api_key == "…f5a4"  # the hashed key, 64 hex digits: masked (logs.secrets)
    # An empty status: success, unless the metadata holds error_information.
    assert (stored["chatcmpl-9x3"].status, stored["chatcmpl-9x3"].model) == ("success", "text-embedding-3-small")
    unpriced = stored["chatcmpl-9x4"]
    assert (unpriced.status, unpriced.cost, unpriced.error_code) == ("error", None, "500")
    assert unpriced.error_details == {"error_class": "InternalServerError", "llm_provider": "azure"}
    # messages / response are never stored anywhere.
    for row in stored.values():
        assert "SECRET" not in json.dumps(log_record(row), ensure_ascii=False)


def test_litellm_json_sample(acme):
    report = import_file(account=acme, path=FIXTURES / "litellm_spendlogs.json", fmt="litellm")
    starts = object_lines("litellm_spendlogs.json", "  {")
    assert len(starts) == 4
    assert summary(report) == (2, 0, 0, 2)
    assert rejected_lines(report) == [
        (starts[2], {"total_tokens": ["Must equal prompt_tokens + completion_tokens (490), got 500."]}),
        (starts[3], {"request_id": ["This field is required."]}),
    ]
    stored = rows(acme)
    docs = stored["msg_01AAA"]
    assert (docs.model, docs.cost, docs.api_key, docs.latency_ms, docs.tags) == (
        "claude-sonnet",
        Decimal("0.0093"),
        "docs-bot",
        2750,
        {"docs": "true"},
    )
    # An epoch startTime, an empty model_group and spend 0 on a failure (0 stays 0).
    timeout = stored["msg_01AAB"]
    assert timeout.timestamp == datetime(2026, 11, 23, 11, 1, 40, 500000, tzinfo=UTC)
    assert (timeout.model, timeout.status, timeout.cost, timeout.latency_ms) == (
        "claude-3-5-sonnet-20241022",
        "error",
        Decimal(0),
        30000,
    )
    assert (timeout.error_code, timeout.error_message) == ("408", "Request timed out")
    assert timeout.ip_address is None


# new-api / one-api --------------------------------------------------------------------


def test_new_api_json_sample_with_quota_rate(acme):
    report = import_file(account=acme, path=FIXTURES / "newapi_logs.json", fmt="auto", quota_per_usd=Decimal(500000))
    starts = object_lines("newapi_logs.json", " {")
    assert report.format == "new-api" and report.rows == 8
    # Top-up (1), manage (3) and system (4) entries are skipped, not rejected.
    assert summary(report) == (3, 0, 3, 2)
    assert rejected_lines(report) == [
        (starts[5], {"timestamp": ["Is before 2000-01-01; epoch values are seconds."]}),
        (starts[6], {"status": ["Unknown new-api log type 7 (2 = consume, 5 = error)."]}),
    ]
    stored = rows(acme)
    assert sorted(stored) == ["newapi-101", "newapi-102", "newapi-108"]
    consume = stored["newapi-101"]
    assert consume.timestamp == datetime(2026, 11, 22, tzinfo=UTC)
    assert (consume.model, consume.status, consume.api_key, consume.ip_address) == (
        "gpt-4o-mini",
        "success",
        "default-token",
        "203.0.113.9",
    )
    assert (consume.prompt_tokens, consume.completion_tokens, consume.cost, consume.latency_ms) == (
        800,
        100,
        Decimal("0.003"),  # 1500 quota / 500000 per USD
        2000,
    )
    # `other` keeps its metadata; the prompt key is dropped by ingest validation.
    assert consume.request_params == {"model_ratio": 1.25, "group_ratio": 1, "completion_ratio": 4, "frt": -1000}
    error = stored["newapi-102"]
    assert (error.status, error.error_message, error.cost) == (
        "error",
        "status_code=429, upstream error: rate limit exceeded",
        0,
    )
    assert stored["newapi-108"].cost == Decimal("0.5") and stored["newapi-108"].ip_address == "2001:db8::42"


def test_new_api_csv_sample_without_quota_rate_is_priced_by_meterlog(acme):
    ModelPrice.objects.create(
        model="gpt-4o-mini",
        input_per_mtok=Decimal("0.15"),
        output_per_mtok=Decimal("0.60"),
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    report = import_file(account=acme, path=FIXTURES / "newapi_logs.csv", fmt="new-api")
    assert summary(report) == (2, 0, 1, 2)
    assert rejected_lines(report) == [
        (5, {"model": ["Must not be empty."]}),
        (6, {"completion_tokens": ["Must be an integer."]}),
    ]
    stored = rows(acme)
    # The request_id column wins where it is set; otherwise newapi-<id>.
    assert sorted(stored) == ["20261124000000123456789", "newapi-202"]
    consume = stored["20261124000000123456789"]
    # 20000 x 0.15 + 1000 x 0.60 per million tokens, not quota / rate.
    assert consume.cost == Decimal("0.0036") and consume.price_id is not None
    assert (consume.latency_ms, consume.request_params) == (12000, {"frt": 850})
    assert stored["newapi-202"].error_message == "upstream error: context_length_exceeded"


# Re-import, gzip, rejected-out, progress, errors ---------------------------------------


def test_reimport_changes_nothing(acme):
    first = import_file(account=acme, path=FIXTURES / "litellm_spendlogs.csv", fmt="auto")
    before = sorted(RequestLog.objects.filter(account=acme).values_list("request_id", "cost", "latency_ms"))
    again = import_file(account=acme, path=FIXTURES / "litellm_spendlogs.csv", fmt="auto")
    assert (again.accepted, again.duplicates, again.rejected_count) == (0, first.accepted, 2)
    after = sorted(RequestLog.objects.filter(account=acme).values_list("request_id", "cost", "latency_ms"))
    assert after == before and len(after) == 4


def test_gzip_input_is_detected_by_magic_bytes(acme, tmp_path):
    packed = tmp_path / "export.data"  # no telling extension: the magic bytes decide
    packed.write_bytes(gzip.compress((FIXTURES / "meterlog_export.csv").read_bytes()))
    out, _err = run("acme", packed)
    assert "format: meterlog-csv, 6 rows read" in out
    assert "accepted: 3\nduplicates: 1\nskipped: 0\nrejected: 2\n" in out
    assert RequestLog.objects.get(account=acme, request_id="chatcmpl-AbC2").error_message.startswith("Overloaded,")


def test_rejected_out_writes_every_rejected_row(acme, tmp_path):
    target = tmp_path / "rejected.ndjson"
    out, _err = run("acme", FIXTURES / "litellm_spendlogs.csv", "--rejected-out", target)
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [(item["line"], item["request_id"], item["errors"]) for item in lines] == [
        (6, "chatcmpl-9x5", {"prompt_tokens": ["Must be 0 or more."]}),
        (7, "chatcmpl-9x6", {"timestamp": ["Must be an RFC 3339 timestamp such as 2026-11-24T21:42:31.123456Z."]}),
    ]
    assert lines[0]["row"]["prompt_tokens"] == "-5" and lines[1]["row"]["startTime"] == "yesterday"
    assert "messages" not in lines[0]["row"] and "response" not in lines[0]["row"]
    assert f"all rejected rows written to {target}" in out


def test_progress_on_stderr_and_summary_on_stdout(acme):
    out, err = run("acme", FIXTURES / "meterlog_export.csv", "--batch-size", "2")
    assert err == (
        "\rimported 2 rows (2 accepted, 0 duplicates, 0 rejected)"
        "\rimported 4 rows (3 accepted, 0 duplicates, 1 rejected)"
        "\rimported 6 rows (3 accepted, 1 duplicates, 2 rejected)\n"
    )
    assert out == (
        "format: meterlog-csv, 6 rows read\n"
        "accepted: 3\nduplicates: 1\nskipped: 0\nrejected: 2\n"
        "first 2 rejected:\n"
        "  line 6 (chatcmpl-AbC4): total_tokens: Must equal prompt_tokens + completion_tokens (15), got 16.\n"
        "  line 7 (chatcmpl-AbC5): error_details: Is not valid JSON text.; status: Must be 'success' or 'error'.\n"
    )


def test_summary_lists_only_the_first_ten_rejections(acme, tmp_path):
    path = tmp_path / "bad.ndjson"
    path.write_text("".join(json.dumps({"request_id": f"r{n}", "model": "m"}) + "\n" for n in range(12)))
    out, _err = run("acme", path, "--format", "meterlog-ndjson")
    assert "rejected: 12\nfirst 10 rejected:\n" in out
    assert "  line 10 (r9): status: This field is required.; timestamp: This field is required.\n" in out
    assert "line 11" not in out


def test_new_api_quota_option_from_the_command(acme):
    out, _err = run("acme", FIXTURES / "newapi_logs.json", "--quota-per-usd", "500000")
    assert "accepted: 3\nduplicates: 0\nskipped: 3\nrejected: 2\n" in out
    assert RequestLog.objects.get(account=acme, request_id="newapi-101").cost == Decimal("0.003")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody", FIXTURES / "meterlog_export.csv"), "no account with slug 'nobody'"),
        (("acme", FIXTURES / "missing.csv"), "no such file:"),
        (("acme", FIXTURES / "meterlog_export.ndjson", "--format", "meterlog-csv"), "is NDJSON, not CSV"),
        (("acme", FIXTURES / "newapi_logs.json", "--quota-per-usd", "0"), "--quota-per-usd must be a positive"),
    ],
)
def test_command_errors(acme, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_undetectable_and_empty_files(acme, tmp_path):
    unknown = tmp_path / "people.csv"
    unknown.write_text("name,email\nAda,ada@example.test\n")
    with pytest.raises(CommandError, match=r"cannot tell the format of people.csv .*columns/keys: email, name"):
        run("acme", unknown)
    empty = tmp_path / "empty.json"
    empty.write_text("  \n")
    with pytest.raises(CommandError, match=r"empty\.json is empty"):
        run("acme", empty)
    broken = tmp_path / "broken.json"
    broken.write_text(
        '[{"request_id": "a", "timestamp": "2026-11-20T00:00:00Z", "model": "m", "status": "success"},\n{'
    )
    with pytest.raises(CommandError, match="not valid JSON in the array at line 2"):
        run("acme", broken)
    assert not RequestLog.objects.exists()


# Round trip: export -> import into an empty account gives the same rows ------------------


def _round_trip_source(account):
    ModelPrice.objects.create(
        model="gpt-4o-mini",
        input_per_mtok=Decimal("0.15"),
        output_per_mtok=Decimal("0.60"),
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    awkward = 'comma, "quotes"\nnew line\ttab ünïcødé 😀 \\N'
    records = [
        {"request_id": "priced", "timestamp": "2026-11-20T12:00:00.000001Z", "model": "gpt-4o-mini",
         "status": "success", "prompt_tokens": 1000, "completion_tokens": 10, "cached_tokens": 0,
         "api_key": "sk-live-abcdefghijklmnop1234", "ip_address": "2001:db8::7", "user_agent": awkward,
         "latency_ms": 0, "request_params": {"temperature": 0.7, "stop": ["\n", ","]}, "tags": {"a,b": 'x"y'}},
        {"request_id": "unpriced, odd\nid", "timestamp": 1795000000, "model": "unknown-model",
         "status": "success", "prompt_tokens": 5, "completion_tokens": 0},
        {"request_id": "err", "timestamp": "2026-11-21T00:00:00+02:00", "model": "gpt-4o", "status": "error",
         "cost": "0", "reasoning_tokens": 12, "error_code": "429", "error_message": awkward,
         "error_details": {"nested": [1, None, {"k": awkward}], "n": 1.5}},
        {"request_id": "scalar-details", "timestamp": "2026-11-22T00:00:00Z", "model": "gpt-4o",
         "status": "error", "cost": "0.000000000001", "error_details": "plain text"},
    ]  # fmt: skip
    result = ingest_records(account=account, records=records)
    assert (result.accepted, result.rejected) == (4, [])


def _export_rows(account) -> list[dict]:
    return [log_record(row) for row in RequestLog.objects.filter(account=account).order_by("request_id")]


def _to_ndjson(records: list[dict]) -> str:
    return "".join(json.dumps({name: r[name] for name in EXPORT_FIELDS}, ensure_ascii=False) + "\n" for r in records)


def _stored(account) -> list[dict]:
    skip = {"id", "account", "account_id", "price_id", "ingested_at"}
    return [
        {k: v for k, v in row.items() if k not in skip}
        for row in RequestLog.objects.filter(account=account).order_by("request_id").values()
    ]


@pytest.mark.parametrize("kind", ["csv", "ndjson"])
def test_round_trip_gives_the_same_rows(acme, tmp_path, kind):
    _round_trip_source(acme)
    exported = _export_rows(acme)
    path = tmp_path / f"export.{kind}"
    path.write_text(reference_csv(exported) if kind == "csv" else _to_ndjson(exported), encoding="utf-8", newline="")
    target = make_account("empty-b")
    report = import_file(account=target, path=path, fmt="auto")
    assert report.format == f"meterlog-{kind}"
    assert (report.accepted, report.duplicates, report.rejected) == (4, 0, [])
    source, copied = _stored(acme), _stored(target)
    assert len(copied) == 4 and copied == source
    assert _export_rows(target) == exported
    # Spot checks that the comparison covers what matters.
    by_id = {row["request_id"]: row for row in copied}
    assert by_id["priced"]["cost"] == Decimal("0.000156") and by_id["priced"]["api_key"] == "sk-…1234"
    assert by_id["unpriced, odd\nid"]["cost"] is None
    assert by_id["scalar-details"]["error_details"] == "plain text"


def test_many_batches_from_gzip_ndjson(acme, tmp_path):
    """2,500 rows in batches of 1,000: a repeat in a later batch is still a duplicate."""
    lines = [
        json.dumps({"request_id": f"bulk-{n}", "timestamp": 1795000000 + n, "model": f"m{n % 3}",
                    "status": "success", "prompt_tokens": n, "cost": "0.000001"})
        for n in range(2500)
    ]  # fmt: skip
    lines[2200] = json.dumps({"request_id": "bulk-5", "timestamp": 1795000000, "model": "m", "status": "success"})
    path = tmp_path / "bulk.ndjson.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    seen = []
    report = import_file(account=acme, path=path, progress=lambda r: seen.append((r.rows, r.accepted)))
    assert seen == [(1000, 1000), (2000, 2000), (2500, 2499)]
    assert (report.accepted, report.duplicates, report.rejected_count) == (2499, 1, 0)
    assert RequestLog.objects.filter(account=acme).count() == 2499
    assert sum(RequestLog.objects.filter(account=acme).values_list("prompt_tokens", flat=True)) == (
        sum(range(2500)) - 2200
    )
