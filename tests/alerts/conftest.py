"""Shared pieces of the alerts tests: traffic put in through ingest (so the rollups are the
ones ingest writes), the events handed to notify, a real HTTP receiver in a thread, rules and
events."""

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count

import pytest

from alerts.models import AlertEvent, AlertRule, EventState, RuleKind
from console.sealed import seal
from logs.ingest.services import ingest_records
from tests.console.test_mail import smtp_server  # noqa: F401 - a fixture of the alerts tests
from tests.factories import make_user

_ids = count(1)
# A fixed "now" for the passes (well inside every retention period of the tests' rows).
NOW = datetime.now(UTC).replace(hour=12, minute=7, second=0, microsecond=0) - timedelta(days=1)


def send(account, at: datetime, n: int = 1, **fields) -> None:
    """`n` requests of `account` at `at` (a datetime), with `fields` over the defaults."""
    records = []
    for _ in range(n):
        record = {
            "request_id": f"r{next(_ids)}",
            "timestamp": at.astimezone(UTC).isoformat(),
            "model": "gpt-4o-mini",
            "status": "success",
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "cost": "0.01",
            "api_key": "team-a",
        }
        record.update({k: (str(v) if isinstance(v, Decimal) else v) for k, v in fields.items()})
        records.append(record)
    result = ingest_records(account=account, records=records)
    assert result.accepted == n, result


@pytest.fixture
def notified(monkeypatch):
    """The events each committed pass handed to alerts.notifications.notify."""
    calls = []
    monkeypatch.setattr("alerts.notifications.notify", lambda events: calls.append(list(events)))
    return calls


class Receiver:
    """A webhook receiver: answers each POST with the next status of `statuses` (the last one
    repeats) and keeps what it was sent."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                index = min(len(receiver.requests) - 1, len(receiver.statuses) - 1)
                status = receiver.statuses[index]
                payload = b"ok" if status < 300 else b"try later"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def json(self, index: int = 0) -> dict:
        return json.loads(self.requests[index]["body"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    servers = []

    def start(statuses=(200,)):
        server = Receiver(statuses)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def page_settings(settings):
    """For the pages', notifications' and backtest's tests (`usefixtures`): their receivers
    listen on 127.0.0.1 (DEBUG's default, said explicitly), and they count rules, so the
    accounts they make get no default rules (alerts.defaults)."""
    settings.METERLOG_WEBHOOK_ALLOW_PRIVATE = True
    settings.METERLOG_ALERT_DEFAULT_RULES = False
    return settings


@pytest.fixture
def adam(acme):
    return make_user("adam@acme.test", account=acme, role="admin")


SECRET = "whsec_test-secret-for-signing"


def make_rule(account, **fields) -> AlertRule:
    fields.setdefault("kind", RuleKind.BUDGET)
    fields.setdefault("name", "Daily budget")
    fields.setdefault("params", {"amount": 10, "period": "daily"})
    if fields.get("webhook_url"):
        fields.setdefault("webhook_secret_sealed", seal(SECRET))
    return AlertRule.objects.create(account=account, **fields)


def make_event(rule, **fields) -> AlertEvent:
    end = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    fields.setdefault("state", EventState.FIRED)
    fields.setdefault("value", Decimal("12.5"))
    fields.setdefault("threshold", Decimal("10"))
    fields.setdefault("window_start", end - timedelta(hours=12))
    fields.setdefault("window_end", end)
    fields.setdefault("message", "$12.50 spent today of $10.00")
    fields.setdefault("notified", True)
    return AlertEvent.objects.create(
        account=rule.account, rule=rule, kind=rule.kind, model=rule.model, api_key=rule.api_key, **fields
    )
