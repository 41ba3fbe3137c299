"""The shape of generate.py's data: models and prices, errors, user agents, key names, the
Azure trace's arrivals and token pairs, the hourly curve and the accounts' sizes and tiers
(see bench/README.md, "The data")."""

import csv
import hashlib
import math
import random
from datetime import datetime, timedelta

from bench.common import DATA_DIR

# (model, weight, input $/Mtok, output $/Mtok, cached input $/Mtok, reasoning model)
# Prices are list prices at the time of writing; None = unpriced (cost stays NULL).
MODELS = [
    ("gpt-4o-mini", 30, 0.15, 0.60, 0.075, False),
    ("gpt-4.1-mini", 16, 0.40, 1.60, 0.10, False),
    ("claude-sonnet-4-20250514", 12, 3.00, 15.00, 0.30, False),
    ("gpt-4o", 9, 2.50, 10.00, 1.25, False),
    ("gemini-2.0-flash", 7, 0.10, 0.40, 0.025, False),
    ("gpt-4.1", 5, 2.00, 8.00, 0.50, False),
    ("claude-3-5-haiku-latest", 4.5, 0.80, 4.00, 0.08, False),
    ("o4-mini", 4, 1.10, 4.40, 0.275, True),
    ("text-embedding-3-small", 3.5, 0.02, 0.0, None, False),
    ("gemini-2.5-pro", 2.5, 1.25, 10.00, 0.31, True),
    ("gpt-4.1-nano", 2, 0.10, 0.40, 0.025, False),
    ("mistral-large-latest", 1.5, 2.00, 6.00, None, False),
    ("o3-mini", 1.2, 1.10, 4.40, 0.55, True),
    ("claude-opus-4-1-20250805", 0.8, 15.00, 75.00, 1.50, False),
    ("llama-3.1-70b-instruct", 0.6, 0.88, 0.88, None, False),
    ("acme-finetune-v2", 0.4, None, None, None, False),
]

# (error_code, weight, message, http status)
ERRORS = [
    ("rate_limit_exceeded", 45, "Rate limit reached for requests per minute. Please try again in 20s.", 429),
    ("context_length_exceeded", 14, "This model's maximum context length is 128000 tokens.", 400),
    ("internal_server_error", 12, "The server had an error while processing your request.", 500),
    ("timeout", 10, "Request timed out after 600 seconds.", 504),
    ("invalid_request_error", 8, "Invalid value for 'temperature': expected a number <= 2.", 400),
    ("content_filter", 6, "The response was filtered due to the prompt triggering the content policy.", 400),
    ("service_unavailable", 5, "The engine is currently overloaded, please try again later.", 503),
]

USER_AGENTS = [
    "OpenAI/Python 1.54.3",
    "litellm/1.108.7",
    "Anthropic/Python 0.39.0",
    "OpenAI/NodeJS 4.71.1",
    "langchain-openai/0.2.9",
    "curl/8.5.0",
    "Go-http-client/2.0",
]
TEAMS = ["search", "support", "analytics", "platform", "growth", "billing"]
KEY_WORDS = ["prod", "staging", "backend", "batch", "chatbot", "eval", "etl", "mobile", "web", "ci"]
TIERS = [("standard", 30), ("professional", 90), ("enterprise", 365)]
OVERRIDE_DAYS = 180


def provider_of(model: str) -> str:
    for prefix, provider in (
        ("gpt", "openai"),
        ("o", "openai"),
        ("text-", "openai"),
        ("claude", "anthropic"),
        ("gemini", "gemini"),
        ("mistral", "mistral"),
        ("llama", "together_ai"),
    ):
        if model.startswith(prefix):
            return provider
    return "custom"


def load_trace():
    """Per-second arrival weights of the Azure hour and its (prompt, completion) pairs."""
    with open(DATA_DIR / "azure_arrivals_per_second.csv") as f:
        counts = [int(r["code"]) + int(r["conv"]) for r in csv.DictReader(f)]
    span = max(i for i, c in enumerate(counts) if c) + 1  # the trace covers ~58 of 60 minutes
    with open(DATA_DIR / "azure_token_pairs.csv") as f:
        pairs = [(int(r["context_tokens"]), int(r["generated_tokens"])) for r in csv.DictReader(f)]
    return counts[:span], pairs


def lower_bounds(weights) -> list[float]:
    """Cumulative lower bounds in [0, 1) for width_bucket(random(), bounds): bucket i has
    probability weights[i] / sum."""
    total = float(sum(weights))
    out, acc = [], 0.0
    for w in weights:
        out.append(acc / total)
        acc += w
    return out


def hour_weight(moment: datetime, year_start: datetime, rng: random.Random) -> float:
    """Traffic of one UTC hour: a weekday office-hours peak (Europe + US overlap), a lower
    weekend, and growth over the year, with a little day-to-day noise."""
    h = moment.hour + 0.5
    diurnal = 0.22 + 0.78 * math.exp(-(((h - 15.0) / 4.5) ** 2))
    weekend = 0.45 if moment.weekday() >= 5 else 1.0
    growth = 0.55 + 0.45 * (moment - year_start) / timedelta(days=365)
    return diurnal * weekend * growth * rng.uniform(0.9, 1.1)


def plan_accounts(n_accounts: int, rng: random.Random):
    """Sizes (row shares) by Zipf rank, tiers at random except the largest (enterprise)."""
    shares = [1.0 / (rank**1.05) for rank in range(1, n_accounts + 1)]
    total = sum(shares)
    plans = []
    for rank, share in enumerate(shares, start=1):
        roll = rng.random()
        tier = "enterprise" if rank == 1 or roll < 0.2 else "professional" if roll < 0.5 else "standard"
        override = None
        if rank in (7, 40, 150):  # negotiated retention: a fourth LIST partition class
            tier, override = "enterprise", OVERRIDE_DAYS
        n_keys = max(1, min(50, round(55 / rank**0.45 * rng.uniform(0.6, 1.2))))
        plans.append(
            {
                "rank": rank,
                "share": share / total,
                "tier": tier,
                "override": override,
                "n_keys": n_keys,
                "error_rate": rng.choice([0.01, 0.02, 0.03, 0.04, 0.05, 0.05, 0.06, 0.08, 0.12]),
            }
        )
    return plans


def key_identifiers(slug: str, n_keys: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """(identifier, fingerprint, display name) per key; a third look like provider secrets
    and are stored masked, the rest are aliases as LiteLLM sends them."""
    from logs.models import ApiKey
    from logs.secrets import fingerprint

    keys, seen = [], set()
    while len(keys) < n_keys:
        if rng.random() < 0.33:
            raw = "sk-" + hashlib.sha256(f"{slug}-{len(keys)}-{rng.random()}".encode()).hexdigest()[:40]
            display = ""
        else:
            raw = f"{rng.choice(KEY_WORDS)}-{rng.choice(TEAMS)}-{len(keys) + 1}"
            display = raw.replace("-", " ").title()
        ident = ApiKey.identifier_for(raw)
        if ident not in seen:
            seen.add(ident)
            keys.append((ident, fingerprint(raw), display))
    return keys
