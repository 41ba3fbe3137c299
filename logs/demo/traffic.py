"""The demo's requests: hours of the traced arrivals and token counts, with models, keys,
errors and incidents on top (see logs/demo/__init__.py)."""

import csv
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from logs.demo.accounts import MODELS, DemoAccount, DemoKey, Model

TRACE_DIR = Path(__file__).resolve().parent.parent / "demo_data"
TRACE_FILES = {"conv": "azure_llm_trace_conv.csv", "code": "azure_llm_trace_code.csv"}

# Share of a weekday's peak traffic by local hour: quiet nights, a morning ramp, a lunch dip.
WEEKDAY_SHAPE = (
    0.16, 0.12, 0.10, 0.09, 0.10, 0.15, 0.28, 0.48, 0.78, 0.96, 1.00, 0.98,
    0.84, 0.92, 0.99, 0.95, 0.88, 0.74, 0.58, 0.47, 0.40, 0.34, 0.27, 0.20,
)  # fmt: skip
WEEKEND_FACTOR = 0.32


@dataclass(frozen=True)
class TraceRow:
    offset: float  # seconds into the hour
    prompt: int
    completion: int


@cache
def load_trace(kind: str) -> tuple[TraceRow, ...]:
    """The traced hour, offsets stretched to exactly one hour (the trace spans ~58 minutes)."""
    with open(TRACE_DIR / TRACE_FILES[kind], newline="") as fh:
        raw = [
            (datetime.fromisoformat(row["TIMESTAMP"][:26]), int(row["ContextTokens"]), int(row["GeneratedTokens"]))
            for row in csv.DictReader(fh)
        ]
    first, last = raw[0][0], raw[-1][0]
    span = (last - first).total_seconds() or 1.0
    scale = 3599.999 / span
    return tuple(TraceRow((ts - first).total_seconds() * scale, p, c) for ts, p, c in raw)


# Background error mix for healthy hours: (code, http status, weight).
ERROR_MIX = (
    ("rate_limit_exceeded", 429, 0.50),
    ("upstream_error", 500, 0.25),
    ("context_length_exceeded", 400, 0.15),
    ("timeout", 504, 0.10),
)
BASE_ERROR_RATE = 0.04


def _error(code: str, status: int, model: Model, prompt: int, rng: random.Random) -> tuple[str, dict]:
    details = {"http_status": status, "provider": model.provider, "model": model.name}
    if code == "rate_limit_exceeded":
        wait = rng.choice((1, 2, 6, 12, 20))
        details["retry_after_s"] = wait
        message = (
            f"Rate limit reached for {model.name} in organization org-demo on tokens per min (TPM): "
            f"Limit 2000000, Used 1998012, Requested {prompt}. Please try again in {wait}s."
        )
    elif code == "context_length_exceeded":
        asked = model.context + rng.randint(200, 40_000)
        details["requested_tokens"] = asked
        message = (
            f"This model's maximum context length is {model.context} tokens. However, your messages "
            f"resulted in {asked} tokens. Please reduce the length of the messages."
        )
    elif code == "insufficient_balance":
        message = "Your credit balance is too low to complete this request. Add credits or raise the budget."
    elif code == "overloaded_error":
        message = "Overloaded"
    elif code == "timeout":
        message = f"Upstream {model.provider} did not answer within 60 s."
    else:
        message = "The server had an error while processing your request. Sorry about that!"
    return message, details


def _incident(account: DemoAccount, key: DemoKey, model: Model, hour_local: datetime, now_local: datetime):
    """Scripted bad hours, relative to today, so the demo always has a story to find."""
    days_ago = (now_local.date() - hour_local.date()).days
    if account.slug == "globex" and key.identifier.startswith("sk-") and days_ago == 2 and 15 <= hour_local.hour < 18:
        return ("insufficient_balance", 402, 1.0)  # the dev key's budget ran out for an afternoon
    if model.provider == "anthropic" and days_ago == 3 and hour_local.hour == 11:
        return ("overloaded_error", 529, 0.5)  # a provider brown-out
    return None


def hourly_count(account: DemoAccount, hour_utc: datetime) -> int:
    local = hour_utc.astimezone(account.zone)
    rng = random.Random(f"count:{account.slug}:{hour_utc:%Y%m%d%H}")  # noqa: S311 (demo data, not security)
    scale = WEEKDAY_SHAPE[local.hour] * (WEEKEND_FACTOR if local.weekday() >= 5 else 1.0)
    return max(0, round(account.peak_per_hour * scale * rng.uniform(0.85, 1.15)))


def _latency(model: Model, completion: int, prompt: int, stream: bool, rng: random.Random) -> int:
    base = model.ttft_ms + prompt * 0.012 + completion * model.ms_per_token
    if stream:
        base += 40  # SSE framing
    return max(20, int(base * math.exp(rng.gauss(0, 0.25))))


def hour_records(account: DemoAccount, hour_utc: datetime, now: datetime) -> list[dict]:
    """The records of one hour (only those not after `now`), in ingest field format."""
    rng = random.Random(f"rows:{account.slug}:{hour_utc:%Y%m%d%H}")  # noqa: S311
    total = hourly_count(account, hour_utc)
    now_local = now.astimezone(account.zone)
    hour_local = hour_utc.astimezone(account.zone)
    records = []
    for key in account.keys:
        trace = load_trace(key.trace)
        n = min(len(trace), round(total * key.share))
        # A random sample of the traced hour keeps its bursts and token mix.
        for row in sorted(rng.sample(trace, n), key=lambda r: r.offset):
            record = _record(account, key, hour_utc, hour_local, now_local, row, rng)
            if datetime.fromisoformat(record["timestamp"]) <= now:
                records.append(record)
    records.sort(key=lambda r: r["timestamp"])
    return records


def _record(account, key, hour_utc, hour_local, now_local, row: TraceRow, rng: random.Random) -> dict:
    names, weights = zip(*key.models, strict=True)
    model = MODELS[rng.choices(names, weights)[0]]
    ts = hour_utc + timedelta(seconds=row.offset)
    stream = rng.random() < key.stream_ratio
    prompt, completion = row.prompt, row.completion
    reasoning = None
    if model.reasons:
        reasoning = int(completion * rng.uniform(1.0, 3.5))
        completion += reasoning  # reasoning tokens are billed as (and counted in) completion
    cached = None
    if model.caches and prompt >= 1024 and rng.random() < 0.35:
        cached = int(prompt * rng.uniform(0.3, 0.9)) // 128 * 128
    max_tokens = next(m for m in (256, 512, 1024, 2048, 4096, 8192, 16384) if m >= completion)
    params = {"max_tokens": max_tokens, "stream": stream}
    if model.reasons:
        params = {"max_completion_tokens": max_tokens, "reasoning_effort": rng.choice(("low", "medium", "high"))}
    elif key.trace == "code":
        params.update(temperature=0.0, stop=["\n\n\n"])
    else:
        params.update(temperature=rng.choice((0.0, 0.2, 0.7, 1.0)), top_p=1)
    record = {
        "request_id": f"req_{rng.getrandbits(96):024x}",
        "timestamp": ts.isoformat().replace("+00:00", "Z"),
        "model": model.name,
        "status": "success",
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "api_key": key.identifier,
        "ip_address": rng.choice(key.ips),
        "user_agent": rng.choice(key.user_agents),
        "request_params": params,
        "tags": dict(key.tags),
    }
    if cached is not None:
        record["cached_tokens"] = cached
    if reasoning is not None:
        record["reasoning_tokens"] = reasoning
    incident = _incident(account, key, model, hour_local, now_local)
    failure = None
    if incident and rng.random() < incident[2]:
        failure = incident[:2]
    elif rng.random() < BASE_ERROR_RATE:
        codes, statuses, weights = zip(*ERROR_MIX, strict=True)
        i = rng.choices(range(len(codes)), weights)[0]
        failure = (codes[i], statuses[i])
    if failure is None:
        record["latency_ms"] = _latency(model, completion, prompt, stream, rng)
        return record
    code, http_status = failure
    message, details = _error(code, http_status, model, prompt, rng)
    # A failed call is not billed: the provider reports no usage for it.
    record.update(
        status="error",
        prompt_tokens=0,
        completion_tokens=0,
        error_code=code,
        error_message=message,
        error_details=details,
        latency_ms=int(rng.uniform(2_000, 30_000) if http_status >= 500 else rng.uniform(25, 180)),
    )
    record.pop("cached_tokens", None)
    record.pop("reasoning_tokens", None)
    return record


def demo_hours(start: datetime, now: datetime) -> Iterator[datetime]:
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour <= now:
        yield hour
        hour += timedelta(hours=1)


def demo_records(account: DemoAccount, start: datetime, now: datetime) -> Iterator[dict]:
    for hour in demo_hours(start, now):
        yield from hour_records(account, hour, now)


def live_records(account: DemoAccount, now: datetime, count: int, rng: random.Random) -> list[dict]:
    """`count` requests that "just arrived" (the demo's trickle, logs.demo.tasks): keys
    picked by their share, token counts from random traced requests, timestamps in the last
    few seconds. Unlike the seeded hours these are not reproducible: each call makes new ids."""
    hour_utc = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    now_local = now.astimezone(account.zone)
    hour_local = hour_utc.astimezone(account.zone)
    weights = [key.share for key in account.keys]
    records = []
    for _ in range(count):
        key = rng.choices(account.keys, weights)[0]
        traced = rng.choice(load_trace(key.trace))
        offset = (now - hour_utc).total_seconds() - rng.uniform(0, 2)
        row = TraceRow(max(0.0, offset), traced.prompt, traced.completion)
        records.append(_record(account, key, hour_utc, hour_local, now_local, row, rng))
    records.sort(key=lambda r: r["timestamp"])
    return records
