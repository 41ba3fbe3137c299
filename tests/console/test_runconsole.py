"""manage.py runconsole: children's output is prefixed, and SIGTERM stops every child."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_runconsole_serves_and_stops_all_children_on_sigterm(tmp_path):
    port = _free_port()
    env = {**os.environ, "DEBUG": "1", "METERLOG_VAR_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    log = tmp_path / "out.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runconsole", f"127.0.0.1:{port}", "--no-color"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "runconsole did not come up:\n" + log.read_text()
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "web    | " in text and "worker | " in text and "beat   | " in text
    assert "Received SIGTERM, stopping web, worker, beat" in text
    assert not _listening(port)
    # No child outlived the supervisor: each ran in its own process group, led by its pid.
    pids = [int(m) for m in re.findall(r"\| started: pid (\d+)", text)]
    assert len(pids) == 3
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
