"""analytics_bench.py's targets and timing: the stats of the engine calls (a QueryTimeout is
counted, not fatal), PASS/FAIL against a p95 target, and EXPLAIN ANALYZE of the misses."""

from bench.common import stats as common_stats
from bench.common import timed

CHART_P95_MS = 50.0
PAGE_P95_MS = 300.0
OPERATOR_P95_MS = 1500.0


def stats(times: list[float], timeouts: list[float] = ()) -> dict:
    out = common_stats(times, timeouts)
    if timeouts:
        out["error"] = f"QueryTimeout in {len(timeouts)} of {len(times) + len(timeouts)} calls (warm-up included)"
    return out


def measure_engine(fn, runs: int, budget_s: float) -> tuple[dict, object]:
    """Stats of the engine calls; a call that raises QueryTimeout is counted (the figure
    fails) and the other calls are kept. The result is the warm-up's (None if it timed out:
    then nothing is compared with raw rows)."""
    timeouts: list[float] = []
    times, result = timed(fn, runs, budget_s, min_runs=5, timeouts=timeouts)
    return stats(times, timeouts), result


def passed(timing: dict, target: float) -> bool:
    """No call timed out and the p95 of the others is within the target."""
    return not timing.get("timeouts") and timing["p95_ms"] is not None and timing["p95_ms"] <= target


def p95_text(timing: dict) -> str:
    return f"p95 {timing['p95_ms']} ms" if timing.get("p95_ms") is not None else "no p95 (every call timed out)"


def worst_p95(timings: list[dict]) -> str:
    """The worst p95 of the figures that answered, and how many timed out (never a stand-in
    number for a timeout)."""
    p95s = [t["p95_ms"] for t in timings if t.get("p95_ms") is not None]
    text = f"worst p95 {max(p95s):.1f} ms" if p95s else "no p95"
    timed_out = sum(1 for t in timings if t.get("timeouts"))
    if timed_out:
        text += f"; {timed_out} figure(s) with a QueryTimeout"
    return text


def plans_of(fn) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of every SELECT `fn` sends, and PostgreSQL's own planning +
    execution time summed over them."""
    from django.db import connection

    from bench.run_bench_plans import captured_selects
    from logs.selectors import QueryTimeout

    texts, planning, execution = [], 0.0, 0.0
    try:
        statements = captured_selects(fn)
    except QueryTimeout:
        return {"planning_ms": 0.0, "execution_ms": 0.0, "plan": "QueryTimeout while capturing the statements"}
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            lines = [row[0] for row in cursor.fetchall()]
            for line in lines:
                if line.startswith("Planning Time:"):
                    planning += float(line.split()[2])
                elif line.startswith("Execution Time:"):
                    execution += float(line.split()[2])
            texts.append(f"{sql}\n-- params: {params!r}")
            texts.append("\n".join(lines))
    return {"planning_ms": round(planning, 2), "execution_ms": round(execution, 2), "plan": "\n".join(texts)}
