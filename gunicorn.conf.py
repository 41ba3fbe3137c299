"""gunicorn settings of the web process: the one place the Dockerfile, docker-compose.yml and
`manage.py runconsole` take them from (`gunicorn --config=gunicorn.conf.py console.wsgi`).

Each value comes from the environment with a safe default; a malformed value stops gunicorn
at start-up instead of falling back. gunicorn also reads this file by itself when started
from the repository root without --config.

Why threads: a sync worker serves one request at a time, so with 3 sync workers a 4th client
waits for a whole request to end. A gthread worker serves GUNICORN_THREADS requests at once;
much of a request's time is spent waiting on PostgreSQL, which releases the GIL. Measured by
bench/load_bench.py (bench/README.md, "Load (issue 14)"; 1 M rows, 2-core shared machine): the
read mix at 16 clients, p50 1.4-2.4 s with 3 sync workers, 0.50-0.98 s with 3 workers x 4
threads (2 x 8 within the noise of 3 x 4; one client alone 64-121 ms p50 with any). Each thread
keeps its own database connection: at most WEB_CONCURRENCY x GUNICORN_THREADS per web process.
"""

import os


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"gunicorn.conf.py: {name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"gunicorn.conf.py: {name} must be at least 1, got {value}")
    return value


# Loopback unless told otherwise: the image sets GUNICORN_BIND=0.0.0.0:8000 (the container's
# port is published on 127.0.0.1 by docker-compose); runconsole passes its own --bind.
bind = [os.environ.get("GUNICORN_BIND", "").strip() or "127.0.0.1:8000"]
workers = _positive_int("WEB_CONCURRENCY", 3)
threads = _positive_int("GUNICORN_THREADS", 4)
# gunicorn would switch to gthread by itself when threads > 1 under the default worker class;
# saying it here makes the choice visible (and GUNICORN_THREADS=1 gives plain sync workers).
worker_class = "gthread" if threads > 1 else "sync"
# A sync worker silent this long is killed and restarted (its request answers 502). A gthread
# worker's main loop keeps reporting while its threads work, so there it only bounds a hung
# worker, not a long streamed export.
timeout = _positive_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = timeout
accesslog = "-"
