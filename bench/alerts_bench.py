"""One alert evaluation pass (alerts.evaluation) over the bench database's accounts with the
three default rules, its time and query count, beside the same figures read from raw rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \
        .venv/bin/python bench/alerts_bench.py [--runs 5] [--accounts 500]

It leaves the bench database as it found it: the rules it makes (three per account, in the
alerts tables; rules already there are switched off for the run) and every pass's writes
(rule states, events) are in one transaction that is rolled back at the end, each timed
pass in a savepoint rolled back after it, so every pass starts from the same state (no
rule firing) and records the same events. The log and rollup tables are only read.

"Now" is one minute after the newest slot of the rollups (the generated data ends in the
past): today so far, yesterday and the hour windows are those of the data's last day.

Printed: the pass's median / max milliseconds and its queries at 50 accounts and at all of
them (the target: under 2 s with a query count that does not grow with the accounts); then
the same figures (each account's cost of today so far and of each of the 16 days before,
requests and errors of the error-rate window, its largest request) from one GROUP BY over
logs_requestlog, its time, and a check that each agrees with the rollups' (MISMATCH
otherwise) and that the rules judge the raw figures as they judged the rollups'.
"""

import argparse
import sys
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Stopwatch, median, setup_django


class Rollback(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--accounts", type=int, default=500)
    args = parser.parse_args()
    setup_django()
    import logging

    logging.getLogger("alerts.evaluation").setLevel(logging.WARNING)

    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from alerts.defaults import default_rules
    from alerts.models import AlertRule
    from analytics.models import UsageQuarter
    from analytics.sql import as_utc
    from console.models import Account
    from logs import gate

    with connection.cursor() as cursor:
        table, where, params = gate.rollup_sql(UsageQuarter, gate.all_accounts())
        cursor.execute(f"SELECT max(start) FROM {table} WHERE {where}", params)
        now = as_utc(cursor.fetchone()[0]) + timedelta(minutes=16)
    accounts = list(Account.objects.order_by("pk")[: args.accounts])
    print(f"{len(accounts)} accounts; now = {now:%Y-%m-%d %H:%M} UTC (one minute after the newest slot)")

    try:
        with transaction.atomic():
            # Rules already there (none in a database generated before alerts) sit out the run.
            set_aside = AlertRule.objects.filter(enabled=True).update(enabled=False)
            if set_aside:
                print(f"{set_aside} existing rules switched off for the run (rolled back)")
            small = _passes(accounts[:50], args.runs, now, default_rules, CaptureQueriesContext)
            large = _passes(accounts, args.runs, now, default_rules, CaptureQueriesContext)
            for label, (times, queries, outcomes) in (("50 accounts", small), (f"{len(accounts)} accounts", large)):
                fired = sum(1 for o in outcomes if o.event is not None)
                print(
                    f"pass over {label}: {len(outcomes)} rules, {fired} fired; median {median(times):.0f} ms, "
                    f"max {max(times):.0f} ms; {queries[0]} queries + {queries[1]} INSERT of the events"
                )
            verdict = "PASS" if median(large[0]) < 2000 and small[1][0] == large[1][0] else "FAIL"
            print(f"{verdict}: under 2 s and the same queries at 50 and {len(accounts)} accounts")
            _compare_raw(accounts, now, large[2])
            raise Rollback
    except Rollback:
        pass
    print("rolled back: the bench database holds no alert rules or events from this run")


def _passes(accounts, runs, now, default_rules, capture):
    from django.db import connection, transaction

    from alerts.evaluation import evaluate_rules
    from alerts.models import AlertRule

    have = set(AlertRule.objects.filter(enabled=True).values_list("account_id", flat=True))
    AlertRule.objects.bulk_create(rule for a in accounts if a.pk not in have for rule in default_rules(a.pk))
    times, queries, outcomes = [], None, None
    for run in range(runs + 1):  # the first is a warm-up
        try:
            with transaction.atomic():
                with capture(connection) as captured, Stopwatch() as watch:
                    outcomes = evaluate_rules(now=now, force=True)
                if run:
                    times.append(watch.seconds * 1000)
                # The INSERT of the events (none when nothing fired) apart from the rest.
                inserts = sum(
                    1 for q in captured.captured_queries if q["sql"].startswith('INSERT INTO "alerts_alertevent"')
                )
                queries = (len(captured) - inserts, inserts)
                raise Rollback
        except Rollback:
            pass
    return times, queries, outcomes


def _compare_raw(accounts, now, outcomes) -> None:
    """The pass's figures from raw rows (one GROUP BY per figure over the log), and a check."""
    from django.db import connection

    from alerts import rules as maths
    from alerts.models import RuleKind
    from analytics import monitoring
    from analytics.measures import to_decimal
    from analytics.models import RollupState
    from logs import gate

    states = monitoring.rollup_states(accounts)
    since = now - timedelta(days=18)
    window = monitoring.window_start(now, 60)
    log_table, log_where, log_params = gate.request_log_sql(gate.all_accounts())
    state_table, state_where, state_params = gate.rollup_sql(RollupState, gate.all_accounts(), alias="s")
    ids = [a.pk for a in accounts]
    daily = defaultdict(dict)
    windows = {}
    with Stopwatch() as watch, connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.account_id, (l.timestamp AT TIME ZONE s.day_timezone)::date, sum(l.cost) "
            f"FROM {log_table} l JOIN {state_table} s ON s.account_id = l.account_id "
            f"WHERE {log_where} AND {state_where} AND l.account_id = ANY(%s) AND l.timestamp >= %s "
            "AND l.timestamp < %s GROUP BY 1, 2",
            [*log_params, *state_params, ids, since, now],
        )
        for account_id, day, cost in cursor.fetchall():
            daily[account_id][day] = to_decimal(cost)
        cursor.execute(
            f"SELECT account_id, count(*), count(*) FILTER (WHERE status = 'error'), max(total_tokens) "
            f"FROM {log_table} WHERE {log_where} AND account_id = ANY(%s) AND timestamp >= %s AND timestamp < %s "
            "GROUP BY 1",
            [*log_params, ids, window, now],
        )
        for account_id, requests, errors, max_tokens in cursor.fetchall():
            windows[account_id] = (requests, errors, max_tokens)
    print(f"the same figures from raw rows: {watch.seconds * 1000:.0f} ms (2 queries over logs_requestlog)")

    mismatches = checked = 0
    for outcome in outcomes:
        rule, verdict = outcome.rule, outcome.verdict
        today = states[rule.account_id].today(now)
        requests, errors, max_tokens = windows.get(rule.account_id, (0, 0, None))
        if rule.kind == RuleKind.COST_ANOMALY:
            raw = maths.cost_anomaly(rule.params, daily.get(rule.account_id, {}), today)
        elif rule.kind == RuleKind.ERROR_RATE:
            raw = maths.error_rate(rule.params, requests=requests, errors=errors)
        else:
            raw = maths.token_spike(rule.params, max_tokens=max_tokens)
        checked += 1
        same_value = (raw.value is None) == (verdict.value is None) and (
            raw.value is None or abs(Decimal(raw.value) - Decimal(verdict.value)) < Decimal("0.01")
        )
        if raw.state != verdict.state or not same_value:
            mismatches += 1
            if mismatches <= 10:
                print(f"MISMATCH account {rule.account_id} {rule.kind}: rollups {verdict} raw {raw}")
    print(f"{checked} rules judged on raw figures: {mismatches} mismatches")


if __name__ == "__main__":
    main()
