"""Logs of a 4xx (issue 17): one line per request, the server's access line, and no
traceback for an expected 403; a 5xx keeps its traceback. The SQLite demo's migrate does not
print the covering-index warning (models.W040), which cannot apply there."""

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core import checks
from django.test import Client, override_settings

from logs import price_views
from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]


def _records(caplog):
    return [r for r in caplog.records if r.name.startswith("django.request") or r.exc_info]


@pytest.mark.django_db
def test_a_403_404_and_400_leave_no_django_request_line_nor_traceback(client, acme, caplog):
    client.force_login(make_user("vic@acme.test", account=acme, role="viewer"))
    with caplog.at_level(logging.DEBUG):
        assert client.get("/settings/").status_code == 403  # PermissionDenied in require_account
        assert client.get("/logs/no-such-request/").status_code == 404
        assert client.get("/pricing/", {"q": "a\x00b"}).status_code == 400
        assert client.get("/api/v1/logs").status_code == 401
    assert _records(caplog) == []


@pytest.mark.django_db
def test_a_500_is_logged_with_its_traceback(acme, alice, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the pricing page broke")

    monkeypatch.setattr(price_views, "_page", broken)
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    with caplog.at_level(logging.DEBUG):
        assert client.get("/pricing/").status_code == 500
    [record] = _records(caplog)
    assert (record.name, record.levelname, record.status_code) == ("django.request", "ERROR", 500)
    assert record.exc_info[0] is RuntimeError


def _sqlite_env(var_dir) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the SQLite default
    return env | {"DEBUG": "1", "METERLOG_VAR_DIR": str(var_dir)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_dev_server_logs_each_4xx_once(tmp_path):
    port = _free_port()
    env = _sqlite_env(tmp_path)
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        statuses = []
        for path in ("/no-such-page/", "/api/v1/logs"):
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
                except urllib.error.HTTPError as exc:
                    statuses.append(exc.code)
                    break
                except OSError:
                    time.sleep(0.1)
        assert statuses == [404, 401]
        time.sleep(1)  # the server writes its access line after the answer
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    assert output.count("/no-such-page/") == 1 and '"GET /no-such-page/ HTTP/1.1" 404' in output
    assert output.count("/api/v1/logs") == 1 and '"GET /api/v1/logs HTTP/1.1" 401' in output
    assert "Traceback" not in output


def test_migrate_on_sqlite_prints_no_covering_index_warning(tmp_path):
    env = _sqlite_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, output
    assert "W040" not in output and "non-key columns" not in output
    assert "Applying analytics.0001" in output


@pytest.mark.django_db
def test_the_warning_is_silenced_only_where_it_applies(settings):
    from django.db import connection

    if connection.vendor != "sqlite":
        assert settings.SILENCED_SYSTEM_CHECKS == []
        return
    assert settings.SILENCED_SYSTEM_CHECKS == ["models.W040"]
    # Unsilenced, SQLite does raise it (so the silence hides a real message, and only this one).
    with override_settings(SILENCED_SYSTEM_CHECKS=[]):
        found = [m.id for m in checks.run_checks(databases=["default"]) if m.level >= checks.WARNING]
    assert found == ["models.W040"]


def test_postgresql_keeps_the_check(tmp_path):
    env = _sqlite_env(tmp_path) | {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x"}
    code = "import django; django.setup(); from django.conf import settings; print(settings.SILENCED_SYSTEM_CHECKS)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env | {"DJANGO_SETTINGS_MODULE": "console.settings"},
        capture_output=True,
        timeout=60,
    )
    assert result.stdout.decode().strip().splitlines()[-1] == "[]", result.stderr.decode()
