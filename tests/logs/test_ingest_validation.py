"""validate_record: one raw record -> clean values or errors named by field (no database)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from logs.ingest.parsing import BadLine
from logs.ingest.validation import MAX_PARAMS_BYTES, validate_record

NOW = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def record(**fields) -> dict:
    base = {
        "request_id": "r-1",
        "timestamp": "2026-11-24T21:42:31.123456Z",
        "model": "gpt-4o-mini",
        "status": "success",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def test_minimal_record_gets_defaults():
    clean, errors = validate_record(record(), now=NOW)
    assert errors is None
    assert clean["timestamp"] == datetime(2026, 11, 24, 21, 42, 31, 123456, tzinfo=UTC)
    assert (clean["prompt_tokens"], clean["completion_tokens"], clean["total_tokens"]) == (0, 0, 0)
    assert clean["cost"] is None and clean["cached_tokens"] is None and clean["latency_ms"] is None
    assert clean["request_params"] == {} and clean["tags"] == {} and clean["error_details"] is None
    assert clean["api_key"] == "" and clean["ip_address"] is None and clean["user_agent"] == ""


def test_full_record_is_cleaned():
    clean, errors = validate_record(
        record(
            timestamp="2026-11-24T22:42:31.5+01:00",
            prompt_tokens=812,
            completion_tokens=64.0,
            total_tokens=876,
            cached_tokens=512,
            reasoning_tokens=0,
            cost=4.2000000000000004e-06,
            api_key="team-a",
            ip_address="2001:db8::1",
            user_agent="curl/8",
            latency_ms=930,
            request_params={"temperature": 0.2, "messages": [{"content": "secret prompt"}]},
            tags={"env": "prod"},
            error_code=429,
            error_message="rate limited",
            error_details={"retry_after": 3},
            unknown_field="ignored",
        ),
        now=NOW,
    )
    assert errors is None
    assert clean["timestamp"] == datetime(2026, 11, 24, 21, 42, 31, 500000, tzinfo=UTC)
    assert (clean["prompt_tokens"], clean["completion_tokens"], clean["total_tokens"]) == (812, 64, 876)
    assert clean["cost"] == Decimal("0.000004200000")
    assert clean["request_params"] == {"temperature": 0.2}
    assert clean["error_code"] == "429"
    assert clean["ip_address"] == "2001:db8::1"
    assert "unknown_field" not in clean


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1795556997.356026, datetime(2026, 11, 24, 21, 49, 57, 356026, tzinfo=UTC)),
        (1795556997, datetime(2026, 11, 24, 21, 49, 57, tzinfo=UTC)),
        ("2026-11-24T21:49:57.356026z", datetime(2026, 11, 24, 21, 49, 57, 356026, tzinfo=UTC)),
        ("2026-11-24T16:49:57.356026-05:00", datetime(2026, 11, 24, 21, 49, 57, 356026, tzinfo=UTC)),
    ],
)
def test_timestamp_forms_keep_microseconds(value, expected):
    clean, errors = validate_record(record(timestamp=value), now=NOW)
    assert errors is None
    assert clean["timestamp"] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0E-12"),
        ("0.1", "0.100000000000"),
        (1e-13, "0E-12"),
        (5e-13, "1E-12"),
        ("12.3456789012345", "12.345678901235"),
    ],
)
def test_cost_is_quantized_to_12_places(value, expected):
    clean, errors = validate_record(record(cost=value), now=NOW)
    assert errors is None
    assert clean["cost"] == Decimal(expected)
    assert clean["cost"].as_tuple().exponent == -12


BAD_FIELDS = [
    ("request_id", _DROP),
    ("request_id", ""),
    ("request_id", 123),
    ("request_id", "x" * 256),
    ("request_id", "a\x00b"),
    ("timestamp", _DROP),
    ("timestamp", "yesterday"),
    ("timestamp", "2026-11-24"),
    ("timestamp", "2026-11-24T10:00:00"),
    ("timestamp", True),
    ("timestamp", 1795556997356),
    ("timestamp", 12),
    ("timestamp", [2026]),
    ("model", _DROP),
    ("model", ""),
    ("model", "m" * 256),
    ("model", {"name": "x"}),
    ("status", _DROP),
    ("status", "ok"),
    ("status", "SUCCESS"),
    ("prompt_tokens", -1),
    ("prompt_tokens", 1.5),
    ("prompt_tokens", "10"),
    ("prompt_tokens", True),
    ("prompt_tokens", 2**31),
    ("completion_tokens", -5),
    ("completion_tokens", "5"),
    ("completion_tokens", False),
    ("cached_tokens", -1),
    ("cached_tokens", "3"),
    ("reasoning_tokens", 2.5),
    ("cost", -0.01),
    ("cost", "free"),
    ("cost", True),
    ("cost", "NaN"),
    ("cost", float("inf")),
    ("cost", "1e13"),
    ("cost", [1]),
    ("api_key", 42),
    ("api_key", "k" * 256),
    ("ip_address", "999.1.1.1"),
    ("ip_address", "localhost"),
    ("ip_address", 3232235777),
    ("user_agent", "u" * 513),
    ("user_agent", ["curl"]),
    ("latency_ms", -3),
    ("latency_ms", "fast"),
    ("request_params", "temperature=1"),
    ("request_params", [1, 2]),
    ("request_params", {"blob": "x" * MAX_PARAMS_BYTES}),
    ("request_params", {"t": float("nan")}),
    ("request_params", {"k": "a\x00b"}),
    ("tags", {"env": 1}),
    ("tags", ["env:prod"]),
    ("tags", "env=prod"),
    ("error_code", "e" * 65),
    ("error_code", True),
    ("error_message", 500),
    ("error_details", {"x": "\ud800"}),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_bad_field_is_rejected_by_name(field, value):
    clean, errors = validate_record(record(**{field: value}), now=NOW)
    assert clean is None
    assert list(errors) == [field], errors
    assert errors[field] and all(isinstance(message, str) for message in errors[field])


def test_every_bad_field_is_reported_at_once():
    _, errors = validate_record({"prompt_tokens": -1, "status": "meh"}, now=NOW)
    assert set(errors) == {"request_id", "timestamp", "model", "status", "prompt_tokens"}


def test_total_tokens_must_equal_the_sum():
    _, errors = validate_record(record(prompt_tokens=10, completion_tokens=5, total_tokens=16), now=NOW)
    assert errors == {"total_tokens": ["Must equal prompt_tokens + completion_tokens (15), got 16."]}
    clean, errors = validate_record(record(prompt_tokens=10, completion_tokens=5, total_tokens=15), now=NOW)
    assert errors is None and clean["total_tokens"] == 15


def test_timestamp_more_than_five_minutes_ahead_is_rejected():
    ahead = NOW + timedelta(minutes=5, seconds=1)
    _, errors = validate_record(record(timestamp=ahead.isoformat()), now=NOW)
    assert errors == {"timestamp": ["Is more than 5 minutes in the future."]}
    _, errors = validate_record(record(timestamp=(NOW + timedelta(minutes=4)).isoformat()), now=NOW)
    assert errors is None


def test_old_records_are_accepted_for_backfills():
    clean, errors = validate_record(record(timestamp="2021-01-01T00:00:00Z"), now=NOW)
    assert errors is None and clean["timestamp"].year == 2021


def test_prompt_keys_are_stripped_at_every_depth():
    params = {
        "temperature": 0,
        "messages": [{"role": "user", "content": "hi"}],
        "prompt": "p",
        "input": "i",
        "contents": ["c"],
        "system": "s",
        "response": {"text": "r"},
        "extra_body": {"messages": ["nested"], "top_k": 3},
        "tools": [{"name": "t", "input": "x"}],
    }
    clean, errors = validate_record(record(request_params=params), now=NOW)
    assert errors is None
    assert clean["request_params"] == {"temperature": 0, "extra_body": {"top_k": 3}, "tools": [{"name": "t"}]}


def test_request_params_limit_counts_after_stripping():
    big_prompt = {"messages": "x" * 50_000, "temperature": 1}
    clean, errors = validate_record(record(request_params=big_prompt), now=NOW)
    assert errors is None and clean["request_params"] == {"temperature": 1}


def test_non_object_items_and_bad_lines_are_rejected():
    assert validate_record([1, 2], now=NOW) == (None, {"non_field_errors": ["Must be a JSON object, not list."]})
    assert validate_record(BadLine(3, "line 3 is not valid JSON (x)"), now=NOW) == (
        None,
        {"non_field_errors": ["line 3 is not valid JSON (x)"]},
    )


def test_scoped_ipv6_loses_its_zone():
    clean, errors = validate_record(record(ip_address="fe80::1%eth0"), now=NOW)
    assert errors is None and clean["ip_address"] == "fe80::1"


def test_long_error_message_is_truncated_not_rejected():
    clean, errors = validate_record(record(error_message="e" * 70_000), now=NOW)
    assert errors is None
    assert len(clean["error_message"]) == 65_536 and clean["error_message"].endswith("…")
