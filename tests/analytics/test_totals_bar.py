"""The log list's totals bar past 10,000 rows: exact and uncapped from the rollups when the
filters are ones the rollups keep, equal to sums over the raw rows computed here; capped as
before with any other filter."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from logs import selectors
from logs.guard import allow_log_writes
from logs.ingest.services import ingest_records
from logs.models import RequestLog
from logs.templatetags.meterlog_format import exact_usd, format_usd

N_ROWS = 10_050
SPAN_START = datetime(2026, 10, 20, 3, 7, tzinfo=UTC)
SPAN_DAYS = 10
RECENT = 300  # rows in the last 30 hours, for the range presets


@pytest.fixture
def big_acme(acme):
    acme.timezone = "Asia/Kolkata"
    acme.save()
    rng = random.Random(21)
    now = timezone.now()
    # Ingest recounts each affected minute's peak: fewer distinct minutes keep set-up fast.
    minutes = [rng.randrange(0, SPAN_DAYS * 1440) for _ in range(1500)]
    records = []
    for i in range(N_ROWS):
        if i < RECENT:
            # Clear of the 24 h preset's edge, which moves while the test runs.
            hours = rng.choice([rng.uniform(0.5, 23), rng.uniform(25, 30)])
            ts = now - timedelta(hours=hours)
        else:
            ts = SPAN_START + timedelta(minutes=rng.choice(minutes), microseconds=rng.randrange(0, 60_000_000))
        error = rng.random() < 0.2
        record = {
            "request_id": f"r{i}",
            "timestamp": ts.isoformat(),
            "model": rng.choice(["gpt-4o", "claude-3", "llama"]),
            "status": "error" if error else "success",
            "prompt_tokens": rng.randrange(0, 50),
            "completion_tokens": rng.randrange(0, 20),
            "api_key": rng.choice(["key-a", "key-b", ""]),
        }
        if error:
            record["error_code"] = rng.choice(["rate_limited", "timeout"])
        if rng.random() < 0.9:
            record["cost"] = str(Decimal(rng.randrange(1, 10**7)) / Decimal(10**10))
        records.append(record)
    result = ingest_records(account=acme, records=records)
    assert result.accepted == N_ROWS
    return acme


def _rows(account):
    return list(
        RequestLog.objects.filter(account=account).values(
            "timestamp", "model", "api_key", "status", "error_code", "prompt_tokens", "completion_tokens", "cost"
        )
    )


def _sums(rows) -> dict:
    return {
        "requests": len(rows),
        "errors": sum(r["status"] == "error" for r in rows),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "total_tokens": sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows),
        "cost": sum((r["cost"] for r in rows if r["cost"] is not None), Decimal(0)),
        "unpriced": sum(r["cost"] is None for r in rows),
    }


def _bar(client, params) -> selectors.LogTotals:
    response = client.get("/logs/", params)
    assert response.status_code == 200, response.content
    return response.context["totals"], response.content.decode()


def _assert_exact(totals, expected):
    assert not totals.capped
    for name in ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "unpriced"):
        assert getattr(totals, name) == expected[name], name
    assert round(totals.cost, 2) == round(expected["cost"], 2)  # to the cent
    if connection.vendor == "postgresql":
        assert totals.cost == expected["cost"]
    else:
        assert abs(totals.cost - expected["cost"]) < Decimal("1e-9")  # SQLite sums decimals as doubles


@pytest.mark.django_db
def test_bar_past_10000_rows_is_exact_and_a_text_search_stays_capped(client, alice, big_acme):
    rows = _rows(big_acme)
    client.force_login(alice)

    totals, body = _bar(client, {})
    expected = _sums(rows)
    assert expected["requests"] == N_ROWS > selectors.TOTALS_CAP
    _assert_exact(totals, expected)
    assert "10,050" in body and "10,000+" not in body
    assert f'title="{exact_usd(totals.cost)}">{format_usd(totals.cost)}<' in body

    # Odd edges: start inclusive on a row's own timestamp, end exclusive on another's.
    ordered = sorted(r["timestamp"] for r in rows)
    start, end = ordered[7], ordered[-9]
    params = {"start": start.isoformat(), "end": end.isoformat()}
    totals, _ = _bar(client, params)
    chosen = [r for r in rows if start <= r["timestamp"] < end]
    assert len(chosen) > selectors.TOTALS_CAP
    _assert_exact(totals, _sums(chosen))

    # A text search is not in the rollups: the raw, capped path.
    totals, body = _bar(client, {"q": "r"})
    assert totals.capped and totals.requests == selectors.TOTALS_CAP and totals.cost is None
    assert "10,000+" in body
    totals, _ = _bar(client, {"min_tokens": "0"})
    assert totals.capped


FILTER_CASES = [
    ({"model": ["gpt-4o", "llama"]}, lambda r: r["model"] in ("gpt-4o", "llama")),
    ({"status": "error", "error_code": "timeout"}, lambda r: r["status"] == "error" and r["error_code"] == "timeout"),
    ({"api_key": "key-a", "model": "claude-3"}, lambda r: r["api_key"] == "key-a" and r["model"] == "claude-3"),
    ({"range": "24h"}, None),
    ({"range": "7d", "status": "success"}, None),
]


@pytest.mark.django_db
def test_filtered_bar_past_the_cap_equals_raw_sums_then_a_purge(client, alice, big_acme, monkeypatch):
    # A lower cap, so every filtered set here is past it and takes the rollup path.
    monkeypatch.setattr(selectors, "TOTALS_CAP", 100)
    rows = _rows(big_acme)
    client.force_login(alice)
    for params, predicate in FILTER_CASES:
        if predicate is None:  # a preset: a window back from now, the FilterSet's own rule
            since = timezone.now() - {"24h": timedelta(hours=24), "7d": timedelta(days=7)}[params["range"]]
            status = params.get("status")
            chosen = [r for r in rows if r["timestamp"] >= since and (status is None or r["status"] == status)]
        else:
            # A start and an end mid-day in Kolkata: partial days at both edges.
            start = SPAN_START + timedelta(days=2, hours=5, minutes=11)
            end = SPAN_START + timedelta(days=7, hours=9, minutes=3, seconds=7)
            params = {**params, "start": start.isoformat(), "end": end.isoformat()}
            chosen = [r for r in rows if start <= r["timestamp"] < end and predicate(r)]
        assert len(chosen) > 100, params
        totals, _ = _bar(client, params)
        _assert_exact(totals, _sums(chosen))

    # The retention purge drops the oldest rows; the rollups keep them, the bar does not.
    cutoff = SPAN_START + timedelta(days=3)
    with allow_log_writes("purge"), connection.cursor() as cursor:  # the purge's writer
        cursor.execute(
            f"DELETE FROM {RequestLog._meta.db_table} WHERE account_id = %s AND timestamp < %s",
            [big_acme.pk, connection.ops.adapt_datetimefield_value(cutoff)],
        )
    rows = _rows(big_acme)
    assert 0 < len(rows) < N_ROWS and all(r["timestamp"] >= cutoff for r in rows)
    totals, _ = _bar(client, {})
    _assert_exact(totals, _sums(rows))
    end = SPAN_START + timedelta(days=6)
    totals, _ = _bar(client, {"model": "llama", "end": end.isoformat()})
    _assert_exact(totals, _sums([r for r in rows if r["model"] == "llama" and r["timestamp"] < end]))
