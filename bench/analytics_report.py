"""analytics_bench.py's printing: one line per figure (engine, raw rows, ratio, check), one
per tab, and the summary at the end."""

from bench.analytics_timing import CHART_P95_MS, OPERATOR_P95_MS, PAGE_P95_MS, p95_text, worst_p95
from bench.common import median


def _ms(value) -> str:
    return f"{value:9.1f}" if isinstance(value, int | float) else f"{'-':>9}"


def print_header() -> None:
    print(
        f"{'scenario':<30}{'chart query':<34}{'med ms':>9}{'p95 ms':>9} {'target':>7} {'':4} "
        f"{'raw med':>9} {'raw/eng':>8}  check"
    )


def check_text(line: dict) -> str:
    check = line.get("check")
    if check is None:
        return "-" if "raw" not in line else "no result"
    if not check["ok"]:
        return f"MISMATCH ({check['n_problems']} of {check['keys']}: {check['problems'][:2]})"
    text = f"ok ({check['keys']} keys" + ("" if check["exact_cost"] else ", cost equal to the cent only")
    if check.get("same_ids") is False:
        text += ", other ids at equal cost"
    return text + ")"


def print_line(line: dict, target: float = CHART_P95_MS) -> None:
    e, r = line["engine"], line.get("raw", {})
    ratio = ""
    if r.get("median_ms") and e.get("median_ms"):
        ratio = f"{r['median_ms'] / e['median_ms']:7.0f}x"
    result = "PASS" if line["pass"] else "FAIL"
    reused = "*" if r.get("reused") else " "
    error = f"  {e['error']}" if "error" in e else ""
    db = f"  (db {line['db_ms']['planning_ms']:.1f}+{line['db_ms']['execution_ms']:.1f} ms)" if "db_ms" in line else ""
    check = check_text(line)
    if check.startswith("MISMATCH"):
        check = "!!! " + check + " !!!"
    print(
        f"{line['scenario']:<30}{line['chart']:<34}{_ms(e.get('median_ms'))}{_ms(e.get('p95_ms'))} "
        f"{target:>7.0f} {result:4} {_ms(r.get('median_ms'))}{reused}{ratio:>8}  {check}{error}{db}",
        flush=True,
    )


def print_page(page: dict) -> None:
    e = page["engine"]
    ratio = ""
    if page["raw_sum_median_ms"] and e.get("median_ms"):
        ratio = f"{page['raw_sum_median_ms'] / e['median_ms']:7.0f}x"
    result = "PASS" if page["pass"] else "FAIL"
    print(
        f"{page['scenario']:<30}{_page_name(page):<34}"
        f"{_ms(e.get('median_ms'))}{_ms(e.get('p95_ms'))} {PAGE_P95_MS:>7.0f} {result:4} "
        f"{_ms(page['raw_sum_median_ms'])} {ratio:>8}" + (f"  {e['error']}" if "error" in e else ""),
        flush=True,
    )


def _page_name(page: dict) -> str:
    if page.get("reports_py"):
        return f"= page {page['tab']}"
    return f"= {page['tab']} tab, sum of {page['charts']}"


def print_summary(result: dict) -> None:
    lines = result["charts"]
    pages = result["pages"]
    print("\n" + "=" * 110)
    print("SUMMARY")
    chart_fail = [line for line in lines if not line["pass"]]
    print(
        f"chart queries: {len(lines) - len(chart_fail)}/{len(lines)} within p95 <= {CHART_P95_MS:.0f} ms; "
        f"{worst_p95([line['engine'] for line in lines])}"
    )
    for line in chart_fail:
        e = line["engine"]
        print(f"  FAIL {line['scenario']} / {line['chart']}: {p95_text(e)} {e.get('error', '')}")
    page_fail = [p for p in pages if not p["pass"]]
    print(
        f"whole tabs: {len(pages) - len(page_fail)}/{len(pages)} within p95 <= {PAGE_P95_MS:.0f} ms; "
        f"{worst_p95([p['engine'] for p in pages])}"
    )
    for p in page_fail:
        print(f"  FAIL {p['scenario']} / {p['tab']} tab: {p95_text(p['engine'])} {p['engine'].get('error', '')}")
    for line in result["operator"]:
        print(
            f"operator {line['scenario']}: {p95_text(line['engine'])} (<= {OPERATOR_P95_MS:.0f}) "
            f"{'PASS' if line['pass'] else 'FAIL'}; raw {line.get('raw', {}).get('median_ms')} ms "
            f"{line['engine'].get('error', '')}"
        )
    for line in result["peak_values"]:
        print(
            f"busiest minute, {line['scenario']}: {p95_text(line['engine'])} "
            f"{'PASS' if line['pass'] else 'FAIL'}; raw {line.get('raw', {}).get('median_ms')} ms "
            f"{line['engine'].get('error', '')}"
        )
    if result["api"] is None:
        print(f"usage API: skipped ({result.get('api_skipped', 'not run')})")
    for line in result["api"] or []:
        print(
            f"usage API {line['scenario']}: {p95_text(line['engine'])} {'PASS' if line['pass'] else 'FAIL'} "
            f"{line['engine'].get('error', '')}"
        )
    checked = [
        line
        for line in [*lines, *result["operator"], *result["peak_values"], *(result["api"] or [])]
        if "check" in line
    ]
    bad = [line for line in checked if not line["check"]["ok"]]
    print(f"engine vs raw rows: {len(checked) - len(bad)}/{len(checked)} agree")
    for line in bad:
        print(f"  !!! MISMATCH {line['scenario']} / {line['chart']}: {line['check']['problems'][:3]}")
    ratios = [
        line["raw"]["median_ms"] / line["engine"]["median_ms"]
        for line in lines
        if line.get("raw", {}).get("median_ms") and line["engine"].get("median_ms") and not line["raw"]["reused"]
    ]
    if ratios:
        print(
            f"raw / engine median ratio: min {min(ratios):.1f}x, median {median(ratios):.0f}x, max {max(ratios):.0f}x"
        )
