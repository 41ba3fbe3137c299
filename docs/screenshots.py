"""The README's screenshots, taken anew from a running demo (`bin/demo`) in headless Chromium.

    bin/demo                                   # in one terminal (PORT=8000 by default)
    .venv/bin/python docs/screenshots.py       # writes docs/screenshots/*.png

Options: `--base http://127.0.0.1:9000` for another port, `--logins var/demo-logins.json`,
`--chromium /usr/bin/chromium`, `--out docs/screenshots`. It logs in as the demo's owner of
acme and takes the first screen (1440 x 900) of each page; a page that answers an error or
writes to the browser console an error fails the run (exit 1), so a stale picture is never kept
silently.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWNER = "alice@acme.example"
# (file name, path, what the README says it shows)
PAGES = [
    ("dashboard", "/", "Dashboard"),
    ("logs", "/logs/", "Log list"),
    ("detail", None, "One request (the newest error)"),
    ("analytics-cost", "/analytics/?tab=cost&range=7d", "Analytics: cost"),
    ("analytics-trend", "/analytics/?tab=trend&range=7d", "Analytics: usage trend"),
    ("analytics-peak", "/analytics/?tab=peak&range=7d", "Analytics: peak time"),
    ("analytics-errors", "/analytics/?tab=errors&range=7d", "Analytics: error rate"),
    ("alerts", "/alerts/", "Alerts"),
    ("report", "/reports/generate/", "Generate report"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--logins", default=str(ROOT / "var" / "demo-logins.json"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    password = json.loads(Path(args.logins).read_text())[OWNER]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(f"{args.base}/accounts/login/")
        page.fill("input[name=username]", OWNER)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        for name, path, label in PAGES:
            if path is None:  # the newest error's detail page, from the filtered list
                page.goto(f"{args.base}/logs/?status=error")
                link = page.locator("table a[href*='/logs/']").first
                path = link.get_attribute("href")
            errors.clear()
            response = page.goto(f"{args.base}{path}")
            page.wait_for_load_state("networkidle")
            status = response.status if response else 0
            if status != 200 or errors:
                failures.append(f"{label} ({path}): HTTP {status}, console errors {errors}")
                continue
            target = out / f"{name}.png"
            page.screenshot(path=str(target))
            print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: {label}")
        browser.close()
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
