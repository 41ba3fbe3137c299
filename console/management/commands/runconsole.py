"""Run the whole console in one terminal: the web server, a Celery worker and Celery beat.

Each child runs in its own process group and its output is prefixed with its name. When
one child exits, or on Ctrl-C / SIGTERM, every child is stopped (SIGTERM to it, then SIGKILL
to its whole group after a grace period), so no worker is left polling the queue.
Production deployments run the three as separate services instead (docker-compose.yml).
"""

import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

GRACE_SECONDS = 10
COLOURS = {"web": "\033[36m", "worker": "\033[33m", "beat": "\033[35m"}
RESET = "\033[0m"


def _check_port_free(addrport: str) -> None:
    """Fail before starting anything: a busy port would otherwise surface as the web child
    dying a second after the worker and beat started."""
    host, _, port = addrport.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, int(port)))
    except ValueError as exc:
        raise CommandError(f"not a host:port: {addrport!r}") from exc
    except OSError as exc:
        raise CommandError(f"cannot listen on {addrport}: {exc.strerror}. Set PORT or pass another host:port.") from exc


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    buffer: bytes = b""


class Command(BaseCommand):
    help = "Run the web server, a Celery worker and Celery beat together (development and demos)."

    def add_arguments(self, parser):
        parser.add_argument(
            "addrport", nargs="?", default="", help="host:port to serve on (default 127.0.0.1:$PORT or 8000)"
        )
        parser.add_argument(
            "--server",
            choices=["auto", "runserver", "gunicorn"],
            default="auto",
            help="Web server: runserver with DEBUG on, gunicorn otherwise (auto).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="gunicorn worker processes (default: gunicorn.conf.py's, WEB_CONCURRENCY or 3)",
        )
        parser.add_argument("--no-worker", action="store_true", help="Do not start a Celery worker.")
        parser.add_argument("--no-beat", action="store_true", help="Do not start Celery beat.")

    def handle(self, *args, **options):
        addrport = options["addrport"] or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
        if ":" not in addrport:
            addrport = f"127.0.0.1:{addrport}"
        _check_port_free(addrport)
        self.colour = not options["no_color"] and sys.stdout.isatty()
        children = [Child("web", self._web_argv(addrport, options))]
        if not options["no_worker"]:
            children.append(Child("worker", self._celery_argv("worker", "--concurrency=2")))
        if not options["no_beat"]:
            # The schedule file lives in var/ so a restart keeps the last-run times.
            children.append(
                Child("beat", self._celery_argv("beat", f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}"))
            )
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        broker = settings.CELERY_BROKER_URL.split("://", 1)[0]
        self.stdout.write(
            f"Meterlog console on http://{addrport}/ : {', '.join(c.name for c in children)} "
            f"(Celery broker: {broker}). Ctrl-C stops them all."
        )
        sys.stdout.flush()
        raise SystemExit(self._supervise(children))

    def _web_argv(self, addrport: str, options) -> list[str]:
        server = options["server"]
        if server == "auto":
            server = "runserver" if settings.DEBUG else "gunicorn"
        if server == "runserver":
            # No autoreloader: it forks a second process that would outlive a SIGTERM to ours.
            return [sys.executable, "manage.py", "runserver", addrport, "--noreload"]
        if not shutil.which("gunicorn", path=os.path.dirname(sys.executable)) and not shutil.which("gunicorn"):
            raise CommandError("gunicorn is not installed; pip install -r requirements.txt")
        # The shipped settings (workers, threads, timeout, access log) come from gunicorn.conf.py,
        # as in the Docker image; the command line only says where to listen.
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            f"--config={settings.BASE_DIR / 'gunicorn.conf.py'}",
            "console.wsgi:application",
            f"--bind={addrport}",
        ]
        if options["workers"] is not None:
            argv.append(f"--workers={options['workers']}")
        return argv

    def _celery_argv(self, role: str, *extra: str) -> list[str]:
        # -q drops celery's start-up banner; log lines still come through.
        return [sys.executable, "-m", "celery", "-q", "-A", "console", role, "--loglevel=INFO", *extra]

    def _prefix(self, name: str) -> str:
        label = f"{name:<6} |"
        return f"{COLOURS.get(name, '')}{label}{RESET} " if self.colour else f"{label} "

    def _emit(self, child: Child, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        sys.stdout.write(self._prefix(child.name) + text + "\n")
        sys.stdout.flush()

    def _supervise(self, children: list[Child]) -> int:
        stop = {"signal": None}

        def on_signal(signum, frame):
            stop["signal"] = signum

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        sel = selectors.DefaultSelector()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            for child in children:
                # A new session per child: Ctrl-C reaches only us, and we stop each child's
                # whole group (gunicorn and celery fork workers of their own).
                child.proc = subprocess.Popen(  # noqa: S603 (argv is built here from sys.executable)
                    child.argv,
                    cwd=settings.BASE_DIR,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                self._emit(child, f"started: pid {child.proc.pid}, {' '.join(child.argv[1:])}".encode())
                os.set_blocking(child.proc.stdout.fileno(), False)
                sel.register(child.proc.stdout, selectors.EVENT_READ, child)
            exit_code = 0
            while stop["signal"] is None:
                for key, _ in sel.select(timeout=0.5):
                    self._pump(key.data, sel)
                dead = [c for c in children if c.proc.poll() is not None]
                if dead:
                    for child in dead:
                        self._drain(child, sel)
                        self._emit(child, f"exited with code {child.proc.returncode}; stopping the others".encode())
                    exit_code = next((c.proc.returncode for c in dead if c.proc.returncode), 1) or 1
                    break
            else:
                name = signal.Signals(stop["signal"]).name
                sys.stdout.write(f"\nReceived {name}, stopping {', '.join(c.name for c in children)}\n")
            self._stop_all(children, sel)
            return 0 if stop["signal"] is not None else exit_code
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            # Belt and braces: never leave a child running if the loop itself failed.
            self._stop_all(children, sel, quiet=True)

    def _pump(self, child: Child, sel) -> None:
        try:
            data = child.proc.stdout.read()
        except (BlockingIOError, ValueError):
            return
        if not data:
            # End of file: the child closed its output (it is exiting).
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(child.proc.stdout)
            return
        child.buffer += data
        *lines, child.buffer = child.buffer.split(b"\n")
        for line in lines:
            self._emit(child, line)

    def _drain(self, child: Child, sel) -> None:
        self._pump(child, sel)
        if child.buffer:
            self._emit(child, child.buffer)
            child.buffer = b""

    def _signal_group(self, child: Child, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, sig)

    def _stop_all(self, children: list[Child], sel, quiet: bool = False) -> None:
        running = [c for c in children if c.proc is not None and c.proc.poll() is None]
        for child in running:
            # The leader first: celery and gunicorn then shut their own workers down cleanly.
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        while running and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                self._pump(key.data, sel)
            running = [c for c in running if c.proc.poll() is None]
        for child in running:
            if not quiet:
                self._emit(child, b"did not stop in time; killing")
            self._signal_group(child, signal.SIGKILL)
            child.proc.wait()
        for child in children:
            if child.proc is not None:
                # A group can outlive its leader (forked workers): make sure it is gone.
                self._signal_group(child, signal.SIGKILL)
                if not quiet:
                    self._drain(child, sel)
