"""Hostile request bodies against a real gunicorn: time and worker peak RSS per case.

Starts gunicorn (1 sync worker, production settings: DEBUG off) on 127.0.0.1 against the
bench database and sends, beside a normal 1,000-record batch (plain, gzip, chunked): 4 MB of
empty gzip members, gzip bombs (one member, and many), a 20 MB+ body (with and without a
Content-Length), deep JSON nesting, and to the import page a gzip bomb upload. The
worker's peak RSS is read from /proc (VmHWM, reset before each case through clear_refs).
The import job itself (the Celery task) then runs in this process, measured the same way.
The target of the issue: every case answered within 1 s and 100 MB of worker memory.
At the end it deletes what it created (its account, user, rows, jobs).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterlog_bench DEBUG=1 \\
        .venv/bin/python bench/hostile_bench.py [--port 8124]
"""

import argparse
import gzip
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_DIR, bench_database_url, setup_django, wait_for_gunicorn
from bench.ingest_bench import free_port

MB = 1024 * 1024
URL = "/api/v1/ingest"


def start_server(port: int, var_dir: str, secret_key: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        DATABASE_URL=bench_database_url(),
        DEBUG="0",
        SECRET_KEY=secret_key,  # this process's: the session it writes must be valid there
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        STATIC_MANIFEST="0",
        LOG_LEVEL="WARNING",
        METERLOG_VAR_DIR=var_dir,
        PYTHONWARNINGS="ignore::UserWarning",
    )
    # One sync worker whatever ./gunicorn.conf.py (read by gunicorn by itself) ships: its peak
    # RSS is the figure. No access log.
    cmd = [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync", "--threads", "1",
           "--bind", f"127.0.0.1:{port}", "--timeout", "60", "--log-level", "warning",
           "--access-logfile", os.devnull, "console.wsgi:application"]  # fmt: skip
    return wait_for_gunicorn(subprocess.Popen(cmd, cwd=REPO_DIR, env=env), port)


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak RSS (VmHWM) to the current RSS


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def request(port: int, headers: dict, body, path: str = URL, chunked: bool = False) -> tuple[int, bytes]:
    """POST; a body of Declared(n) sends a Content-Length of n and 1 MB of it only (the
    server answers 413 without reading on, and would reset a client still sending)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        if isinstance(body, Declared):
            conn.putrequest("POST", path)
            for name, value in {**headers, "Content-Length": str(body.length)}.items():
                conn.putheader(name, value)
            conn.endheaders(b"[" + b" " * MB)
        else:
            conn.request("POST", path, body=body, headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Declared:
    def __init__(self, length: int):
        self.length = length

    def __len__(self) -> int:
        return self.length


def batch(n: int, prefix: str) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {"request_id": f"{prefix}-{i}", "timestamp": (now - timedelta(seconds=i)).isoformat(), "model": "gpt-4o-mini",
         "status": "success", "prompt_tokens": 120, "completion_tokens": 30, "api_key": "hostile-bench"}
        for i in range(n)
    ]  # fmt: skip


def ingest_cases(run: str) -> list[tuple[str, dict, object, bool]]:
    """(name, headers, body, chunked) per case; headers without the token."""
    js, gz = {"Content-Type": "application/json"}, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    blank = b" " * MB
    members = gzip.compress(b" " * (8 * MB))
    return [
        ("normal 1,000-record batch", js, json.dumps(batch(1000, f"{run}-a")).encode(), False),
        ("normal batch, gzip", gz, gzip.compress(json.dumps(batch(1000, f"{run}-b")).encode()), False),
        ("normal batch, chunked", js, [json.dumps(batch(1000, f"{run}-c")).encode()], True),
        ("4 MB of empty gzip members", gz, gzip.compress(b"") * (4 * MB // 20), False),
        ("gzip bomb, 100 MB in one member", gz, gzip.compress(b"[" + b" " * (100 * MB) + b"]"), False),
        ("gzip bomb, 8 MB members x 12", gz, gzip.compress(b"[") + members * 12 + gzip.compress(b"]"), False),
        ("21 MB body, Content-Length", js, Declared(21 * MB), False),
        ("20 MB+ body, chunked", js, [b"[", *[blank] * 20, b" " * 10, b"]"], True),
        ("1 MB of [ (deep nesting)", js, b"[" * MB, False),
    ]


def login_cookies(user) -> dict:
    """A session for `user` and a CSRF pair, made in the database (no login form to post)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    # The backend that logs users in: the first one, axes' AxesStandaloneBackend, only counts
    # failures and has no get_user (the session was refused: every upload answered 500).
    session[BACKEND_SESSION_KEY] = next(b for b in settings.AUTHENTICATION_BACKENDS if not b.startswith("axes."))
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {"session": session.session_key, "csrf": secrets.token_hex(16)}


def multipart(fields: dict, file_name: str, data: bytes) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]  # fmt: skip
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        f"Content-Type: application/gzip\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return f"multipart/form-data; boundary={boundary}", b"".join(parts) + f"--{boundary}--\r\n".encode()


def import_bomb(kind: str) -> bytes:
    """One row, then 2 GB of blanks in 20 MB members (~2 MB as sent): a JSON array (the old
    format check read it whole), or NDJSON of 1 KB blank lines."""
    row = {"request_id": "hostile-import-1", "timestamp": "2026-11-21T14:00:00Z", "model": "gpt-4.1",
           "status": "success", "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}  # fmt: skip
    row = json.dumps(row).encode()
    if kind == "json":
        blanks = gzip.compress(b" " * (20 * MB))
        return gzip.compress(b"[" + row + b",") + blanks * 100 + gzip.compress(b"]")
    blanks = gzip.compress((b" " * 1023 + b"\n") * (20 * 1024))
    return gzip.compress(row + b"\n") + blanks * 100


def measure(pid: int, fn) -> tuple[float, float, object]:
    reset_peak(pid)
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, peak_mb(pid), result


def run() -> list[dict]:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from console.models import Account, ApiToken, Membership, TokenScope
    from logs.guard import allow_log_writes
    from logs.imports import jobs
    from logs.models import ImportJob, RequestLog

    run_id = f"hb{secrets.token_hex(4)}"
    var_dir = tempfile.mkdtemp(prefix="hostile-bench-")
    settings.METERLOG_IMPORT_DIR = Path(var_dir) / "media" / "imports"  # where gunicorn stores uploads
    account = Account.objects.create(slug=f"bench-{run_id}", name=f"bench {run_id}", tier="enterprise")
    user = get_user_model().objects.create_user(
        username=f"{run_id}@bench.test", email=f"{run_id}@bench.test", password=secrets.token_urlsafe(16)
    )
    Membership.objects.create(user=user, account=account, role="owner")
    _token, secret = ApiToken.generate(account=account, scope=TokenScope.INGEST, name="hostile bench")
    results, queued = [], []
    port = free_port()
    try:
        server = start_server(port, var_dir, settings.SECRET_KEY)
        try:
            pid = worker_pid(server.pid)
            request(port, {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
                    json.dumps(batch(10, f"{run_id}-warm")).encode())  # fmt: skip
            for name, headers, body, chunked in ingest_cases(run_id):
                headers = {**headers, "Authorization": f"Bearer {secret}"}
                sent = sum(map(len, body)) if isinstance(body, list) else len(body)
                seconds, peak, (status, payload) = measure(
                    pid, lambda h=headers, b=body, c=chunked: request(port, h, iter(b) if c else b, chunked=c)
                )
                answer = json.loads(payload)
                note = f"accepted {answer['accepted']}" if status == 200 else answer.get("detail", "")[:70]
                results.append({"case": name, "sent_mb": sent / MB, "status": status, "seconds": seconds,
                                "peak_rss_mb": peak, "note": note})  # fmt: skip

            cookies = login_cookies(user)
            headers = {"Cookie": f"sessionid={cookies['session']}; csrftoken={cookies['csrf']}"}
            for kind in ("json", "ndjson"):
                content_type, form = multipart({"format": "auto", "csrfmiddlewaretoken": cookies["csrf"]},
                                               f"bomb.{kind}.gz", import_bomb(kind))  # fmt: skip
                seconds, peak, (status, _payload) = measure(
                    pid, lambda c=content_type, f=form: request(port, {**headers, "Content-Type": c}, f, "/imports/")
                )
                job = ImportJob.objects.filter(account=account).exclude(pk__in=queued).first()
                queued += [job.pk] if job else []
                results.append({"case": f"import upload, {kind} 2 GB gzip bomb", "sent_mb": len(form) / MB,
                                "status": status, "seconds": seconds, "peak_rss_mb": peak,
                                "note": f"job {job.state}" if job else "no job"})  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)
        # The Celery task, in this process: streamed through the capped inflater.
        settings.METERLOG_IMPORT_MAX_DECOMPRESSED_BYTES = 1024 * MB
        for pk in queued:
            seconds, peak, done = measure(os.getpid(), lambda pk=pk: jobs.run_import_job(pk))
            results.append({"case": f"import job {done.file_name} (1 GB cap)", "sent_mb": 0, "status": done.state,
                            "seconds": seconds, "peak_rss_mb": peak, "note": done.error[:70]})  # fmt: skip
    finally:
        # The bench's own synthetic rows: an operator's deletion, so it says so (logs.guard).
        with allow_log_writes("deletion"):
            RequestLog.objects.filter(account=account).delete()
        ImportJob.objects.filter(account=account).delete()
        user.delete()
        account.delete()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    setup_django()
    results = run()
    print(f"{'case':<40} {'sent':>8} {'status':>7} {'time':>8} {'peak RSS':>9}  note")
    for r in results:
        print(f"{r['case']:<40} {r['sent_mb']:>6.2f}MB {r['status']!s:>7} {r['seconds']:>7.3f}s "
              f"{r['peak_rss_mb']:>7.1f}MB  {r['note']}")  # fmt: skip


if __name__ == "__main__":
    main()
