"""gunicorn.conf.py: the web process's settings from the environment, loaded by gunicorn itself."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from gunicorn.app.base import Application
from gunicorn.config import Config

CONF = settings.BASE_DIR / "gunicorn.conf.py"
VARIABLES = ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT", "GUNICORN_BIND")


class _App(Application):
    """gunicorn's own loader (what --config does), without a command line to parse."""

    def load_config(self):
        self.load_config_from_file(str(CONF))

    def load(self):
        return None


def load(monkeypatch, **env) -> Config:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return _App().cfg


def test_defaults_are_three_workers_of_four_threads(monkeypatch):
    cfg = load(monkeypatch)
    assert (cfg.workers, cfg.threads, cfg.worker_class_str, cfg.timeout) == (3, 4, "gthread", 30)
    assert cfg.graceful_timeout == 30
    assert cfg.address == [("127.0.0.1", 8000)]
    assert cfg.accesslog == "-"


def test_environment_sets_workers_threads_timeout_and_bind(monkeypatch):
    cfg = load(monkeypatch, WEB_CONCURRENCY="2", GUNICORN_THREADS="8", GUNICORN_TIMEOUT="120",
               GUNICORN_BIND="127.0.0.2:8001")  # fmt: skip
    assert (cfg.workers, cfg.threads, cfg.worker_class_str, cfg.timeout) == (2, 8, "gthread", 120)
    assert cfg.address == [("127.0.0.2", 8001)]


def test_one_thread_is_a_sync_worker(monkeypatch):
    cfg = load(monkeypatch, WEB_CONCURRENCY="5", GUNICORN_THREADS="1")
    assert (cfg.workers, cfg.threads, cfg.worker_class_str) == (5, 1, "sync")


@pytest.mark.parametrize("value", ["three", "0", "-2", "1.5"])
def test_a_malformed_value_stops_gunicorn(monkeypatch, value):
    with pytest.raises(SystemExit, match="GUNICORN_THREADS must be"):
        load(monkeypatch, GUNICORN_THREADS=value)


def test_gunicorn_reads_the_file_it_is_given(tmp_path):
    """gunicorn's own command line: --config, the environment, and the command line over both."""
    env = {"PATH": "/usr/bin:/bin", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "6"}
    code = (
        "import sys; from gunicorn.app.wsgiapp import WSGIApplication\n"
        "app = WSGIApplication(); app.load_default_config(); app.load_config()\n"
        "c = app.cfg; print(c.workers, c.threads, c.worker_class_str, c.timeout, c.bind)"
    )
    argv = [sys.executable, "-c", code, f"--config={CONF}", "console.wsgi:application", "--bind=127.0.0.1:9"]
    out = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out.split(maxsplit=4) == ["2", "6", "gthread", "30", "['127.0.0.1:9']\n"]


def test_docker_compose_passes_the_same_defaults():
    """docker-compose gives the web container the variables with gunicorn.conf.py's defaults
    (never empty: gunicorn itself fails on an empty WEB_CONCURRENCY) and starts it with the file."""
    compose = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())
    web = compose["services"]["web"]
    env = compose["x-meterlog"]["environment"]
    assert env["WEB_CONCURRENCY"] == "${WEB_CONCURRENCY:-3}"
    assert env["GUNICORN_THREADS"] == "${GUNICORN_THREADS:-4}"
    assert env["GUNICORN_TIMEOUT"] == "${GUNICORN_TIMEOUT:-30}"
    assert web["command"] == "gunicorn --config=/app/gunicorn.conf.py console.wsgi:application"
    dockerfile = (Path(settings.BASE_DIR) / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "--config=/app/gunicorn.conf.py", "console.wsgi:application"]' in dockerfile
    assert "GUNICORN_BIND=0.0.0.0:8000" in dockerfile


def test_runconsole_starts_gunicorn_with_the_file():
    from console.management.commands.runconsole import Command

    argv = Command()._web_argv("127.0.0.1:8123", {"server": "gunicorn", "workers": None})
    assert argv[1:] == ["-m", "gunicorn", f"--config={CONF}", "console.wsgi:application", "--bind=127.0.0.1:8123"]
    argv = Command()._web_argv("127.0.0.1:8123", {"server": "gunicorn", "workers": 2})
    assert argv[-1] == "--workers=2"
