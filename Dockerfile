# Meterlog: one image for the web process (gunicorn + whitenoise), the Celery worker and
# Celery beat. docker-compose.yml runs it with PostgreSQL, Redis and Mailpit.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
# A writable home: gunicorn keeps its control socket in ~/.gunicorn.
RUN useradd --system --uid 10001 --create-home --home-dir /home/meterlog --shell /usr/sbin/nologin meterlog \
    && mkdir -p /data && chown meterlog /data

# Dependencies first, the pinned runtime set: this layer is rebuilt only when
# requirements.lock changes.
COPY requirements.lock .
RUN pip install -r requirements.lock

COPY . .
# Static files are collected (hashed and compressed) at build time; whitenoise serves them.
# The key below exists only for this build step and is never used at run time.
RUN DEBUG=0 SECRET_KEY=build-only STATIC_ROOT=/app/staticfiles METERLOG_VAR_DIR=/tmp/build-var \
        python manage.py collectstatic --noinput -v 0 \
    && rm -rf /tmp/build-var \
    && chmod +x docker/entrypoint.sh

# gunicorn's settings live in gunicorn.conf.py (WEB_CONCURRENCY, GUNICORN_THREADS,
# GUNICORN_TIMEOUT); in a container it listens on every interface of the container.
ENV STATIC_ROOT=/app/staticfiles \
    METERLOG_VAR_DIR=/data \
    GUNICORN_BIND=0.0.0.0:8000
USER meterlog
VOLUME ["/data"]
EXPOSE 8000

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["gunicorn", "--config=/app/gunicorn.conf.py", "console.wsgi:application"]
