"""Hostile request bodies at the ingest endpoints: gzip of many empty members, bombs, chunked
bodies (through a real gunicorn), and the shared inflater's work being linear in its input."""

import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from logs import decompress
from logs.ingest import parsing
from logs.models import RequestLog
from tests.factories import make_account, subprocess_database_url
from tests.logs.test_ingest_api import URL, post, record, token_for

EMPTY_MEMBER = gzip.compress(b"")


class _CountingInflater:
    """zlib's decompressobj, counting the bytes it is handed (re-fed tails included)."""

    def __init__(self, counter: dict, *args, **kwargs):
        self._inner = _real_decompressobj(*args, **kwargs)
        self._counter = counter
        counter["inflaters"] += 1

    def decompress(self, data, max_length=0):
        self._counter["fed"] += len(data)
        return self._inner.decompress(data, max_length)

    def __getattr__(self, name):
        return getattr(self._inner, name)


_real_decompressobj = zlib.decompressobj


@pytest.fixture
def inflater_work(monkeypatch):
    counter = {"inflaters": 0, "fed": 0}
    monkeypatch.setattr(decompress.zlib, "decompressobj", lambda *a, **k: _CountingInflater(counter, *a, **k))
    return counter


@pytest.mark.django_db
def test_many_empty_gzip_members_are_413_after_the_member_cap(client, acme, inflater_work):
    body = EMPTY_MEMBER * (4 * 1024 * 1024 // len(EMPTY_MEMBER))  # 4 MB: 209,715 members
    response = post(client, token_for(acme), body, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert response.json()["detail"] == "Body has more than 1,000 gzip members; send one gzip stream."
    # The work stopped at the cap: one inflater per member up to it, not 209,715.
    assert inflater_work["inflaters"] == parsing.MAX_GZIP_MEMBERS
    assert not RequestLog.objects.exists()


@pytest.mark.django_db
def test_gzip_members_up_to_the_cap_are_one_body(client, acme):
    records = gzip.compress(json.dumps([record(1), record(2)]).encode())
    body = EMPTY_MEMBER * (parsing.MAX_GZIP_MEMBERS - 1) + records
    response = post(client, token_for(acme), body, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 2
    assert sorted(RequestLog.objects.values_list("request_id", flat=True)) == ["req-1", "req-2"]


@pytest.mark.django_db
def test_bomb_in_many_members_is_413(client, acme):
    member = gzip.compress(b" " * (8 * 1024 * 1024))  # 8 MB of blanks in ~8 KB
    body = gzip.compress(b"[") + member * 4 + gzip.compress(b"]")
    response = post(client, token_for(acme), body, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert response.json()["detail"] == "Body is larger than 20 MB once decompressed."


@pytest.mark.django_db
def test_truncated_and_trailing_junk_gzip_are_400(client, acme):
    data = gzip.compress(json.dumps([record(1)]).encode())
    token = token_for(acme)
    response = post(client, token, data[:-4], **{"Content-Encoding": "gzip"})
    assert (response.status_code, response.json()["detail"]) == (400, "Gzip body is truncated.")
    response = post(client, token, data + b"junk", **{"Content-Encoding": "gzip"})
    assert response.status_code == 400 and response.json()["detail"].startswith("Body is not valid gzip (")
    assert not RequestLog.objects.exists()


def test_inflating_many_tiny_members_feeds_zlib_linearly(inflater_work):
    # 50,000 one-byte members (1 MB): the old loop handed zlib the whole rest of the input
    # for every member (~26 GB in all); each byte is now handed over about once.
    data = gzip.compress(b"x") * 50_000
    out = decompress.gunzip(data, limit=1_000_000, max_members=1_000_000)
    assert out == b"x" * 50_000
    assert inflater_work["inflaters"] == 50_000
    assert inflater_work["fed"] < 4 * len(data)


def test_inflating_a_bomb_stops_just_past_the_limit(inflater_work):
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    produced = 0
    with pytest.raises(decompress.TooLarge, match="larger than 1 MB once decompressed"):
        for piece in decompress.inflate([bomb], limit=1024 * 1024, max_members=1):
            produced += len(piece)
            assert len(piece) <= decompress.OUT_CHUNK
    assert produced <= 1024 * 1024
    assert inflater_work["fed"] < 4 * len(bomb)


@pytest.mark.django_db
def test_chunked_body_on_a_server_without_terminated_input_is_411(client, acme):
    # runserver hands over the socket itself: reading to its end would hang the worker.
    response = client.post(
        URL,
        data=b"[]",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token_for(acme)}", "Transfer-Encoding": "chunked"},
        CONTENT_LENGTH="",
    )
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]


# --- a real gunicorn: chunked bodies have no Content-Length there --------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["4", "1"], ids=["gthread", "sync"])
def gunicorn_port(request, tmp_path):
    """gunicorn with the shipped gunicorn.conf.py (1 worker; 4 threads as shipped, or 1: a sync
    worker) on a free port, against the test database."""
    port = _free_port()
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": subprocess_database_url(), "METERLOG_VAR_DIR": str(tmp_path)}
    env.update(PYTHONWARNINGS="ignore::UserWarning", WEB_CONCURRENCY="1", GUNICORN_THREADS=request.param)
    config = f"--config={settings.BASE_DIR / 'gunicorn.conf.py'}"
    argv = [sys.executable, "-m", "gunicorn", config, "console.wsgi:application", f"--bind=127.0.0.1:{port}"]
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(argv, cwd=settings.BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start; its log:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _post_chunked(port: int, token: str, chunks, headers=None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(headers or {})}
        # An iterable body with encode_chunked: http.client sends Transfer-Encoding: chunked.
        conn.request("POST", URL, body=iter(chunks), headers=headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.postgres_only
def test_chunked_ingest_through_gunicorn_is_stored(transactional_db, gunicorn_port):
    account = make_account("chunky")
    token = token_for(account)
    now = datetime.now(UTC)
    records = [record(n, timestamp=(now - timedelta(minutes=n)).isoformat()) for n in range(1, 301)]
    body = json.dumps(records).encode()
    chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]  # as a gateway streams a batch
    status, answer = _post_chunked(gunicorn_port, token, chunks)
    assert (status, answer["accepted"], answer["rejected"]) == (200, 300, [])
    assert RequestLog.objects.filter(account=account).count() == 300

    gz = gzip.compress(json.dumps([record(1000, timestamp=now.isoformat())]).encode())
    status, answer = _post_chunked(gunicorn_port, token, [gz[:10], gz[10:]], {"Content-Encoding": "gzip"})
    assert (status, answer["accepted"]) == (200, 1)
    assert RequestLog.objects.filter(account=account).count() == 301


@pytest.mark.postgres_only
def test_chunked_body_over_the_cap_through_gunicorn_is_413(transactional_db, gunicorn_port):
    account = make_account("chunky")
    blank = b" " * (1024 * 1024)
    status, answer = _post_chunked(gunicorn_port, token_for(account), [b"[", *[blank] * 20, b" " * 10, b"]"])
    assert status == 413
    assert answer["detail"] == "Body is larger than 20 MB."
    assert not RequestLog.objects.filter(account=account).exists()
