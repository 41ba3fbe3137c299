"""A pytest plugin that makes the environment-dependent parts of the suite visible and, in CI,
mandatory. Registered from tests/conftest.py through `pytest_plugins`.

Three groups of tests need something besides Python: `postgres_only` (a PostgreSQL database),
`redis` (a reachable Redis, for a real Celery worker) and `browser` (Chromium driven by
Playwright). This plugin
- skips a test of a group, with the reason, when what the group needs is missing, so each
  test does not have to repeat the check;
- prints a per-group line (passed / skipped and why) at the end of the run;
- with METERLOG_REQUIRE=postgres_only,redis,browser (bin/test sets it when CI=true), fails
  the run when a required group had a skip or no passing test, so a CI machine that lost its
  database, Redis or browser cannot pass silently;
- with METERLOG_GUARD_REPORT=<path>, writes the same figures as JSON for bin/test's summary.
"""

import json
import os
import shutil
import socket
from collections import defaultdict
from urllib.parse import urlparse

import pytest

GROUPS = ("postgres_only", "redis", "browser")
CHROMIUM = os.environ.get("METERLOG_CHROMIUM", "/usr/bin/chromium")
TEST_REDIS_URL = os.environ.get("METERLOG_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

_results: dict[str, dict] = defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0, "reasons": set()})
_guard_errors: list[str] = []


def required_groups() -> list[str]:
    raw = os.environ.get("METERLOG_REQUIRE", "")
    groups = [g.strip() for g in raw.split(",") if g.strip()]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise pytest.UsageError(f"METERLOG_REQUIRE names unknown groups: {', '.join(sorted(unknown))}")
    return groups


def _database_vendor() -> str:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    return "postgresql" if "postgresql" in engine else engine.rsplit(".", 1)[-1]


def _redis_problem() -> str | None:
    parsed = urlparse(TEST_REDIS_URL)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(64).startswith(b"+PONG"):
                return f"Redis at {host}:{port} did not answer PING"
    except OSError as exc:
        return f"Redis not reachable at {host}:{port} ({exc.strerror or exc})"
    return None


def _browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        return f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    return None


_problem_cache: dict[str, str | None] = {}


def _problem(group: str) -> str | None:
    if group not in _problem_cache:
        if group == "postgres_only":
            vendor = _database_vendor()
            _problem_cache[group] = None if vendor == "postgresql" else f"needs PostgreSQL (this run uses {vendor})"
        elif group == "redis":
            _problem_cache[group] = _redis_problem()
        else:
            _problem_cache[group] = _browser_problem()
    return _problem_cache[group]


def _groups_of(item) -> list[str]:
    return [g for g in GROUPS if item.get_closest_marker(g) is not None]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for group in _groups_of(item):
        problem = _problem(group)
        if problem:
            pytest.skip(f"[{group}] {problem}")


def pytest_runtest_logreport(report):
    # Runs in the xdist controller too, so the counts cover every worker.
    groups = [g for g in GROUPS if g in report.keywords]
    if not groups:
        return
    outcome = None
    if report.skipped:
        outcome = "skipped"
    elif report.failed:
        outcome = "failed"
    elif report.passed and report.when == "call":
        outcome = "passed"
    if outcome is None:
        return
    for group in groups:
        _results[group][outcome] += 1
        if outcome == "skipped":
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple | list) else str(report.longrepr)
            _results[group]["reasons"].add(reason.removeprefix("Skipped: "))


def _summary() -> dict:
    return {
        group: {
            "passed": _results[group]["passed"],
            "failed": _results[group]["failed"],
            "skipped": _results[group]["skipped"],
            "reasons": sorted(_results[group]["reasons"]),
        }
        for group in GROUPS
    }


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller judges the whole run
    summary = _summary()
    for group in required_groups():
        figures = summary[group]
        if figures["skipped"]:
            _guard_errors.append(
                f"{group}: {figures['skipped']} test(s) skipped but required here: {'; '.join(figures['reasons'])}"
            )
        elif figures["passed"] == 0 and figures["failed"] == 0:
            _guard_errors.append(f"{group}: required here, but no test of this group ran")
    if _guard_errors and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    report_path = os.environ.get("METERLOG_GUARD_REPORT")
    if report_path:
        with open(report_path, "w") as fh:
            json.dump({"groups": summary, "guard_errors": _guard_errors, "exitstatus": int(session.exitstatus)}, fh)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput"):
        return
    summary = _summary()
    required = required_groups()
    terminalreporter.section("environment-dependent tests")
    for group in GROUPS:
        figures = summary[group]
        line = f"{group:<14} passed {figures['passed']}, failed {figures['failed']}, skipped {figures['skipped']}"
        if group in required:
            line += "  (required)"
        terminalreporter.write_line(line)
        for reason in figures["reasons"]:
            terminalreporter.write_line(f"{'':<14} skipped: {reason}")
    for error in _guard_errors:
        terminalreporter.write_line(f"CI GUARD FAILED: {error}", red=True, bold=True)
