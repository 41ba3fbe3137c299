"""run_bench.py's summary: one line per target with PASS/FAIL (the worst figure of each kind),
printed at the end, and the results file bench/results/<timestamp>.json (+ the plans)."""

import json

from bench.common import RESULTS_DIR
from bench.run_bench_admin import ADMIN_RATIO
from bench.run_bench_lists import FILTERS, INGEST_RATIO, LIST_P95_MS, SEARCH_P95_MS, TOTALS_P95_MS, within, worst_key


def summary(rows, search, timeout, ingest) -> list[dict]:
    lines = []

    def add(what, value, target, ok, unit="ms"):
        lines.append({"what": what, "value": value, "target": target, "pass": ok, "unit": unit})

    if ingest:
        ratio = ingest["ratio"]
        add(
            f"ingest HTTP {ingest['http_rps']:,.0f}/s vs COPY {ingest['copy_rps']:,.0f}/s",
            round(ratio * 100, 1),
            f">= {INGEST_RATIO:.0%}",
            ratio >= INGEST_RATIO,
            "%",
        )
        add(
            f"  same, 2 clients into 2 accounts ({ingest['http_two_accounts_rps']:,.0f}/s)",
            round(ingest["ratio_two_accounts"] * 100, 1),
            f">= {INGEST_RATIO:.0%}",
            ingest["ratio_two_accounts"] >= INGEST_RATIO,
            "%",
        )
        plain = ingest["copy_plain_table_rps"]
        add(f"  reference: HTTP vs COPY into an unindexed plain table ({plain:,.0f}/s)",
            round(ingest["http_rps"] / plain * 100, 1), "-", None, "%")  # fmt: skip

    def shown(s):
        return f"timeout ({s['timeouts']} of {s['n'] + s['timeouts']})" if s.get("timeouts") else s["p95_ms"]

    def db(server):
        if server.get("timeout"):
            return "db timeout"
        return f"db {server['planning_ms']:.1f}+{server['execution_ms']:.1f} ms"

    for filter_name in FILTERS:
        for kind in ("first", "deep"):
            matching = [r for r in rows if r["filter"] == filter_name and kind in r]
            if matching:
                # The worst line, with PostgreSQL's own plan+exec time for it: a p95 far above
                # that is the machine's noise, one close to it is the query plan.
                worst = max(matching, key=lambda r, k=kind: worst_key(r[k]))
                add(
                    f"list {kind:<5} {filter_name} (of {len(matching)}; {db(worst[f'{kind}_server'])})",
                    shown(worst[kind]),
                    f"<= {LIST_P95_MS:.0f}",
                    within(worst[kind], LIST_P95_MS),
                )
    for filter_name in FILTERS if rows else []:
        matching = [r for r in rows if r["filter"] == filter_name and r["range"] != "1y"]
        if not matching:
            continue
        worst = max(matching, key=lambda r: worst_key(r["totals"]))
        add(
            f"totals {filter_name} 24h/30d (of {len(matching)}; {db(worst['totals_server'])})",
            shown(worst["totals"]),
            f"<= {TOTALS_P95_MS:.0f}",
            within(worst["totals"], TOTALS_P95_MS),
        )
    year = [r["totals"] for r in rows if r["range"] == "1y"]
    if year:  # the spec sets the totals target for 30 days; 1 year is shown for reference
        add(f"totals any filter 1y (worst p95 of {len(year)}; reference)", shown(max(year, key=worst_key)), "-", None)
    # Keyset deep page against the real admin changelist (medians): worst ratio over the lines.
    compared = [r for r in rows if "admin" in r]
    if compared:
        ratios = [(r.get("admin_ratio"), r) for r in compared]
        failed = [r for ratio, r in ratios if ratio is None]  # a side timed out
        worst_ratio, worst = min(((x, r) for x, r in ratios if x is not None), default=(None, None), key=lambda t: t[0])
        if worst is not None:
            add(
                f"admin changelist / keyset deep page (medians; worst of {len(compared)}: "
                f"{worst['account']} {worst['range']} {worst['filter']})",
                worst_ratio,
                f">= {ADMIN_RATIO:.0f}x",
                worst_ratio >= ADMIN_RATIO and not failed,
                "x",
            )
            lines[-1]["detail"] = (
                f"admin {worst['admin']['median_ms']:.0f} ms at row {worst['admin_depth']:,} "
                f"(page {worst['admin_depth'] // 50 + 1}), keyset {worst['deep']['median_ms']:.1f} ms "
                f"at row {worst['deep_depth']:,}"
            )
        if failed:
            add(f"admin changelist / keyset page: {len(failed)} lines timed out", "timeout", f">= {ADMIN_RATIO:.0f}x",
                False, "x")  # fmt: skip
        first = [r["admin_first"]["median_ms"] / r["first"]["median_ms"] for r in compared
                 if r["admin_first"]["median_ms"] and r["first"]["median_ms"]]  # fmt: skip
        if first:
            add("admin changelist first page / keyset first page, median (worst; reference)", min(first), "-", None,
                "x")  # fmt: skip
    for line in search:
        for kind in ("first", "totals"):
            s = line[kind]
            add(
                f"{line['filter']} {line['account']} 30d {kind} p95",
                shown(s),
                f"<= {SEARCH_P95_MS:.0f}",
                within(s, SEARCH_P95_MS),
            )
    if timeout["outcome"] != "skipped":
        add("statement timeout answers QueryTimeout", timeout["ms"], "raises", timeout["raised"])
    return lines


def print_summary(lines) -> None:
    print("\n" + "=" * 100)
    print(f"{'SUMMARY':<66}{'value':>12} {'target':>10}  result")
    for line in lines:
        value = line["value"]
        shown = f"{value:,.1f} {line['unit']}" if isinstance(value, int | float) else str(value)
        result = "-" if line["pass"] is None else "PASS" if line["pass"] else "FAIL"
        print(f"{line['what']:<66}{shown:>12} {line['target']:>10}  {result}")
        if line.get("detail"):
            print(f"    {line['detail']}")


def save(result: dict, plans: list, stamp: str) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    if plans:
        (RESULTS_DIR / f"{stamp}-plans.txt").write_text(
            "\n\n".join(f"== {p['what']}\n{p['plan']}" for p in plans) + "\n"
        )
    print(f"\nresults: {path}" + (f" (+ {len(plans)} EXPLAIN plans in {stamp}-plans.txt)" if plans else ""))
