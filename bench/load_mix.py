"""The parts of load_bench.py: gunicorn with the shipped config, the bench's users and tokens,
the read and ingest mixes, and the clients that run them.

A client is a thread with its own keep-alive connection (http.client reconnects by itself
when a sync worker closes it after each response). It times each request from sending to
the last byte of the answer; anything but 200 is an error and is not timed.
"""

import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import REPO_DIR, bench_database_url, percentile, wait_for_gunicorn

CONF = REPO_DIR / "gunicorn.conf.py"
INGEST_BATCH = 100
INGEST_ACCOUNTS = 4  # ingest clients take turns over these, as several gateways would


@dataclass(frozen=True)
class ServerConfig:
    name: str
    workers: int
    threads: int

    @property
    def label(self) -> str:
        if self.threads == 1:
            return f"{self.workers} sync workers"
        return f"{self.workers} workers x {self.threads} threads"


# --- gunicorn --------------------------------------------------------------------------------


def start_gunicorn(config: ServerConfig, port: int, secret_key: str, log_path: Path) -> subprocess.Popen:
    """gunicorn with gunicorn.conf.py as shipped; the workers and threads through the same
    variables a deployment sets (WEB_CONCURRENCY, GUNICORN_THREADS). Production settings
    (DEBUG off), this process's SECRET_KEY (the sessions it writes must be valid there); the
    access log (on in the shipped config) goes to `log_path` with the server's other output."""
    env = dict(
        os.environ,
        DATABASE_URL=bench_database_url(),
        DEBUG="0",
        SECRET_KEY=secret_key,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        STATIC_MANIFEST="0",
        LOG_LEVEL="WARNING",
        PYTHONWARNINGS="ignore::UserWarning",  # "No directory at STATIC_ROOT": no static files here
        WEB_CONCURRENCY=str(config.workers),
        GUNICORN_THREADS=str(config.threads),
        GUNICORN_BIND=f"127.0.0.1:{port}",
    )
    cmd = [sys.executable, "-m", "gunicorn", f"--config={CONF}", "console.wsgi:application"]
    with open(log_path, "ab") as log:
        log.write(f"\n=== {config.label} on port {port}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    return wait_for_gunicorn(proc, port)


def stop_gunicorn(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def workers_peak_rss_mb(master: int) -> list[float]:
    """Peak RSS (VmHWM) of each gunicorn worker of `master`, in MB."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    peaks = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return peaks


# --- who the clients are ---------------------------------------------------------------------


@dataclass
class Fixture:
    """A member of the largest account (a session), a read token of it, ingest tokens of
    INGEST_ACCOUNTS accounts made for the run; `cleanup()` deletes all of it."""

    read_account: object
    cookie: str
    read_token: str
    ingest_tokens: list[str]
    run: str
    _created: list = field(default_factory=list)

    def cleanup(self) -> int:
        """Deletes what the run made (the ingested rows with their accounts); returns the rows."""
        from console.models import Account
        from logs.guard import allow_log_writes
        from logs.models import RequestLog

        rows = 0
        for obj in reversed(self._created):
            if isinstance(obj, Account):
                # The run's own synthetic rows: an operator's deletion, so it says so (logs.guard).
                with allow_log_writes("deletion"):
                    rows += RequestLog.objects.filter(account=obj).delete()[0]
            obj.delete()
        return rows


def make_fixture() -> Fixture:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from console import tenancy
    from console.models import Account, ApiToken, Membership, TokenScope

    run = f"lb{secrets.token_hex(4)}"
    created = []
    # The largest account: the heaviest pages (bench-001 holds ~17% of the rows).
    account = Account.objects.filter(slug="bench-001").first()
    if account is None:
        sys.exit("no account bench-001: load the bench database first (bench/generate.py)")
    user = get_user_model().objects.create_user(
        username=f"{run}@bench.test", email=f"{run}@bench.test", password=secrets.token_urlsafe(16)
    )
    created.append(user)
    Membership.objects.create(user=user, account=account, role="viewer")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    # The backend that loads users (the first one, axes', only counts failed logins).
    session[BACKEND_SESSION_KEY] = next(b for b in settings.AUTHENTICATION_BACKENDS if b.endswith("ModelBackend"))
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[tenancy.SESSION_KEY] = account.pk
    session.create()
    created.append(session)
    read, read_secret = ApiToken.generate(account=account, scope=TokenScope.READ, name="load bench")
    created.append(read)
    ingest_tokens = []
    for n in range(INGEST_ACCOUNTS):
        target = Account.objects.create(slug=f"{run}-{n}", name=f"load bench {run} {n}", tier="enterprise")
        created.append(target)
        _token, secret = ApiToken.generate(account=target, scope=TokenScope.INGEST, name="load bench")
        ingest_tokens.append(secret)
    return Fixture(account, f"sessionid={session.session_key}", read_secret, ingest_tokens, run, created)


# --- the mixes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    headers: dict
    body: object = None  # bytes, or a callable giving the next body


def read_mix(fx: Fixture) -> list[Call]:
    """The default views a user and a reporting script open: the dashboard, the log list and
    the analytics page (session), the query and usage APIs (read token)."""
    page = {"Cookie": fx.cookie}
    api = {"Authorization": f"Bearer {fx.read_token}"}
    return [
        Call("dashboard /", "GET", "/", page),
        Call("log list /logs/", "GET", "/logs/", page),
        Call("API /api/v1/logs", "GET", "/api/v1/logs", api),
        Call("analytics /analytics/", "GET", "/analytics/", page),
        Call("usage API (by model)", "GET", "/api/v1/usage?group_by=model", api),
    ]


class IngestBodies:
    """Batches of INGEST_BATCH fresh records: one serialized template whose request ids are
    made unique per batch with a byte replace (no JSON encoding on the client per request)."""

    MARK = b"@@BATCH@@"

    def __init__(self, run: str):
        from bench.ingest_bench import make_records

        records = make_records(INGEST_BATCH, ["load-bench-alias", "svc-a", "svc-b"], random.Random(14), "@@BATCH@@")
        self._template = json.dumps(records).encode()
        self._run = run.encode()
        self._count = iter(range(1, 1 << 62))
        self._lock = threading.Lock()

    def __call__(self) -> bytes:
        with self._lock:
            n = next(self._count)
        return self._template.replace(self.MARK, self._run + b"-%d" % n)


def ingest_mix(fx: Fixture, bodies: IngestBodies) -> list[list[Call]]:
    """One call list per ingest account: client i posts to account i % INGEST_ACCOUNTS."""
    return [
        [Call(f"ingest {INGEST_BATCH} records", "POST", "/api/v1/ingest",
              {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, bodies)]
        for token in fx.ingest_tokens
    ]  # fmt: skip


# --- clients ---------------------------------------------------------------------------------


@dataclass
class Sample:
    name: str
    ms: float


@dataclass
class PhaseResult:
    clients: int
    seconds: float
    samples: list[Sample]
    errors: list[str]

    def summary(self, name: str | None = None) -> dict:
        times = [s.ms for s in self.samples if name is None or s.name == name]
        errors = [e for e in self.errors if name is None or e.startswith(name + ":")]
        out = {"n": len(times), "errors": len(errors), "rps": len(times) / self.seconds}
        if times:
            out.update(p50_ms=percentile(times, 50), p99_ms=percentile(times, 99))
        return out


def _one(conn: http.client.HTTPConnection, call: Call) -> tuple[int, bytes]:
    body = call.body() if callable(call.body) else call.body
    conn.request(call.method, call.path, body=body, headers=call.headers)
    response = conn.getresponse()
    return response.status, response.read()


def _client(port: int, calls: list[Call], start: int, until: float, out: PhaseResult, lock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    samples, errors, i = [], [], start
    try:
        while time.perf_counter() < until:
            call = calls[i % len(calls)]
            i += 1
            t0 = time.perf_counter()
            try:
                status, payload = _one(conn, call)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{call.name}: {type(exc).__name__} {exc}")
                conn.close()
                continue
            ms = (time.perf_counter() - t0) * 1000
            if status == 200:
                samples.append(Sample(call.name, ms))
            else:
                errors.append(f"{call.name}: HTTP {status} {payload[:200]!r}")
    finally:
        conn.close()
        with lock:
            out.samples.extend(samples)
            out.errors.extend(errors)


def run_phase(port: int, call_lists: list[list[Call]], clients: int, seconds: float) -> PhaseResult:
    """`clients` threads for `seconds`: client i runs call list i % len(call_lists), from
    its own offset in it, so at any moment the clients are spread over the mix."""
    out = PhaseResult(clients, seconds, [], [])
    lock = threading.Lock()
    until = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=_client, args=(port, call_lists[i % len(call_lists)], i, until, out, lock))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def cold_burst(port: int, calls: list[Call], clients: int) -> list[str]:
    """Right after start-up, every client asks for the same page at once, page after page:
    a worker's first charts are drawn by several threads together (plotly fills some caches
    lazily). Returns the errors."""
    errors = []
    for call in calls:
        result = PhaseResult(clients, 1, [], [])
        barrier = threading.Barrier(clients)

        def one(call=call, result=result, barrier=barrier):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            barrier.wait()
            try:
                status, payload = _one(conn, call)
                if status != 200:
                    result.errors.append(f"{call.name}: HTTP {status} {payload[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                result.errors.append(f"{call.name}: {type(exc).__name__} {exc}")
            finally:
                conn.close()

        threads = [threading.Thread(target=one) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        errors += result.errors
    return errors
