"""Demo traffic for a fresh install: two accounts with a few days of realistic requests.

Arrival pattern and token counts come from real requests: the Azure LLM inference traces
(Azure Public Dataset, Microsoft, CC-BY 4.0; see logs/demo_data/README.md). Each hour of
the demo replays a random sample of the traced hour, sized by a diurnal curve in the
account's own time zone and damped on weekends. Models, keys, errors and the rest are
invented on top, with a few incidents so error filters have something to find.

Generation is deterministic: an hour's rows come from a random generator seeded with the
account and the hour, so regenerating an hour yields the same request_ids and ingest counts
them as duplicates. That is what makes `seed_demo` safe to re-run (and lets it top up the
hours that passed since the last run).
"""

from logs.demo.accounts import DEMO_ACCOUNTS, OPERATOR_EMAIL, DemoAccount
from logs.demo.traffic import demo_records, hour_records, hourly_count, load_trace

__all__ = [
    "DEMO_ACCOUNTS",
    "OPERATOR_EMAIL",
    "DemoAccount",
    "demo_records",
    "hour_records",
    "hourly_count",
    "load_trace",
]
