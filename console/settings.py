"""Meterlog settings. Everything that differs between deployments comes from the environment."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from console.email_url import email_settings_from_env
from console.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("METERLOG_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-used-with-DEBUG-on"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Behind TLS by default once DEBUG is off; a plain-HTTP trial sets these to 0.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HSTS goes with secure cookies: a site that sends those is served over TLS only. Start a new
# deployment with a short SECURE_HSTS_SECONDS; browsers remember the value that long.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if SESSION_COOKIE_SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Sent with DEBUG on too, so a developer sees a violation before production does.
# No inline script anywhere (data goes in json_script blocks, code in static/js/). Inline
# style is allowed: plotly draws its charts with style attributes and a <style> element.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    }
}

# Login throttling (django-axes): failures count per user name AND client IP together, so
# one noisy client cannot lock a member out from everywhere, nor one user lock out an office.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "console.login_throttle.lockout_response"
# The client IP: REMOTE_ADDR, unless the console runs behind TRUSTED_PROXY_COUNT reverse
# proxies that each append to X-Forwarded-For (console.login_throttle.client_ip).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "console.login_throttle.client_ip"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served from /static/, never a CDN
    "import_export",
    "axes",
    "csp",
    "console",
    "logs",
    "analytics",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # DELETE / PUT / PATCH answer 405 everywhere: nothing is deleted or edited over HTTP.
    "console.middleware.RefuseEditMethodsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "console.middleware.ViewerTimezoneMiddleware",
    # A missing or wrong log encryption key: a 503 page saying what to set, not a 500.
    "console.middleware.EncryptionKeyErrorMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.current_account",
            ],
        },
    },
]

# SQLite is the embedded default; DATABASE_URL=postgres://... selects PostgreSQL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'meterlog.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # WAL lets the web process read while the worker writes; a busy timeout instead of
    # "database is locked" errors when two writers meet.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# models.W040: SQLite has no INCLUDE columns, so analytics' covering index
# (usageslice_value_covering) is a plain index there. That is a PostgreSQL read-speed aid the
# SQLite demo does not need; silenced on SQLite only, where it cannot apply (PostgreSQL
# builds the index as declared and never raises it).
SILENCED_SYSTEM_CHECKS = ["models.W040"] if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else []

# Statement timeout (ms) for the log list's slow filters (text search, IP) on PostgreSQL.
LOG_SEARCH_TIMEOUT_MS = env_int("LOG_SEARCH_TIMEOUT_MS", 2000)
# Fernet keys for accounts with log encryption on (logs.encryption): comma-separated, newest
# first. New rows are encrypted with the first; the others only decrypt older rows until
# `manage.py rotate_encryption_key` has re-encrypted them. Empty: encryption cannot be switched on.
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY", "")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# AxesStandaloneBackend refuses a locked-out user name + IP before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/logs/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"  # stored and served in UTC; the UI converts to the viewer's zone
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "console.staticfinders.PlotlyFinder",  # static/vendor/plotly.min.js from the plotly package
]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Exports and imports (logs/exports/jobs.py, logs/imports/jobs.py). Job files live under
# METERLOG_MEDIA_DIR, which is never served as static/media: downloads go through a view
# that checks the account.
METERLOG_MEDIA_DIR = Path(env_str("METERLOG_MEDIA_DIR", str(VAR_DIR / "media")))
METERLOG_EXPORT_DIR = Path(env_str("METERLOG_EXPORT_DIR", str(METERLOG_MEDIA_DIR / "exports")))
METERLOG_IMPORT_DIR = Path(env_str("METERLOG_IMPORT_DIR", str(METERLOG_MEDIA_DIR / "imports")))
METERLOG_EXPORT_ASYNC_ROWS = env_int("METERLOG_EXPORT_ASYNC_ROWS", 1_000_000)  # browser exports above: a job
METERLOG_EXPORT_TTL_HOURS = env_int("METERLOG_EXPORT_TTL_HOURS", 24)
METERLOG_IMPORT_MAX_BYTES = env_int("METERLOG_IMPORT_MAX_BYTES", 200 * 1024 * 1024)
# A gzip import file is inflated as it is read (never whole) and refused past this many
# bytes of content: a 1 MB bomb must not run a worker for hours. 10x the upload limit.
METERLOG_IMPORT_MAX_DECOMPRESSED_BYTES = env_int("METERLOG_IMPORT_MAX_DECOMPRESSED_BYTES", 2 * 1024**3)
# Export / import jobs queued or running without a sign of life this long lost their worker.
METERLOG_JOB_STALE_MINUTES = env_int("METERLOG_JOB_STALE_MINUTES", 30)

# Alerts: seconds between evaluation passes (the beat entry), and whether a new account
# gets the default rules (cost anomaly, error rate, token spike).
METERLOG_ALERT_EVALUATION_SECONDS = env_int("METERLOG_ALERT_EVALUATION_SECONDS", 60)
if METERLOG_ALERT_EVALUATION_SECONDS < 10:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("METERLOG_ALERT_EVALUATION_SECONDS must be at least 10")
METERLOG_ALERT_DEFAULT_RULES = env_bool("METERLOG_ALERT_DEFAULT_RULES", True)

REDIS_URL = env_str("REDIS_URL")
# Without Redis (the embedded default) Celery uses a broker made of files under var/.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_queue_dir / "processed"),
        "store_processed": False,
        # kombu's default is "control" relative to the working directory; keep it under var/.
        "control_folder": str(_queue_dir / "control"),
    }
    # kombu lists the queue folder on every poll and fails when it is missing.
    (_queue_dir / "control").mkdir(parents=True, exist_ok=True)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL or "")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Task modules outside an app's tasks.py (which autodiscovery finds by itself).
CELERY_IMPORTS = ("alerts.delivery_tasks", "alerts.report_tasks", "logs.demo.tasks")
CELERY_BEAT_SCHEDULE = {
    # Partitions are created ahead so ingest rarely pays for DDL; the check raises an alarm
    # when rows land in a default partition (see logs/partitions.py).
    "create-upcoming-partitions": {"task": "logs.tasks.create_upcoming_partitions", "schedule": 60 * 60},
    "check-default-partitions": {"task": "logs.tasks.check_default_partitions", "schedule": 15 * 60},
    # Export job files are deleted METERLOG_EXPORT_TTL_HOURS after they are written.
    "expire-export-files": {"task": "logs.tasks.expire_export_files", "schedule": 15 * 60},
    # Export and import jobs whose worker died (no heartbeat) are marked failed.
    "fail-stale-jobs": {"task": "logs.tasks.fail_stale_jobs", "schedule": 5 * 60},
    # Per-minute counts only serve ingest's busiest-minute upkeep for recent minutes.
    "purge-old-minutes": {"task": "analytics.tasks.purge_old_minutes", "schedule": 60 * 60},
    # The retention purge (logs.retention): rows past each account's period, and rollups
    # older than ROLLUP_RETENTION_MONTHS. Daily, at a quiet hour; `manage.py purge_logs`
    # does the same by hand. Runs never overlap (an advisory lock).
    "purge-expired-logs": {
        "task": "logs.tasks.purge_expired_logs",
        "schedule": crontab(hour="2", minute="15"),
    },
    # After an account's period changed (tier, custom period), its older rows move to the
    # new class in batches (logs.retention.moves), so the purge and partition drops follow it.
    "move-retention-classes": {"task": "logs.tasks.move_retention_classes", "schedule": 60 * 60},
    # Alert rules judged on the rollups (alerts.evaluation); a pass skips rules another pass
    # judged less than half an interval ago.
    "evaluate-alerts": {"task": "alerts.tasks.evaluate_alerts", "schedule": METERLOG_ALERT_EVALUATION_SECONDS},
    # A finished month's slices and daily rows in value order (analytics.rollups.compact_month).
    "compact-rollups": {
        "task": "analytics.tasks.compact_last_month",
        "schedule": crontab(day_of_month="3", hour="3", minute="30"),
    },
    # Scheduled report mails (alerts.reports.sending): each subscription's period once, from
    # its hour in the account's zone; a tick also retries the sends that failed.
    "send-due-reports": {"task": "alerts.report_tasks.send_due_reports", "schedule": 15 * 60},
}
# The demo's trickle (logs/demo/tasks.py): a few invented requests into the demo accounts
# every METERLOG_DEMO_TRICKLE_SECONDS, so the log list's Live switch shows rows arriving.
# bin/demo turns it on; it never runs with DEBUG off.
METERLOG_DEMO_TRICKLE = DEBUG and env_bool("METERLOG_DEMO_TRICKLE", False)
METERLOG_DEMO_TRICKLE_SECONDS = max(1, env_int("METERLOG_DEMO_TRICKLE_SECONDS", 5))
if METERLOG_DEMO_TRICKLE:
    CELERY_BEAT_SCHEDULE["demo-trickle"] = {
        "task": "logs.demo.tasks.demo_trickle",
        "schedule": METERLOG_DEMO_TRICKLE_SECONDS,
    }
# The retention purge (logs/retention/): rows per DELETE batch (each batch is its own short
# transaction; 5,000 keeps one under ~100 ms and its WAL small), the seconds one run may
# spend before it stops and leaves the rest to the next run, and how long a purge
# statement waits for a lock before giving up (so ingest and readers never queue behind it).
METERLOG_PURGE_BATCH_ROWS = env_int("METERLOG_PURGE_BATCH_ROWS", 5000)
METERLOG_PURGE_TIME_BUDGET_SECONDS = env_int("METERLOG_PURGE_TIME_BUDGET_SECONDS", 1800)
METERLOG_PURGE_LOCK_TIMEOUT_MS = env_int("METERLOG_PURGE_LOCK_TIMEOUT_MS", 2000)
# After each DELETE batch and each partition drop the purge sleeps this percentage of the
# time the step took (100: it takes at most about half of a core and of the disk from
# ingest and readers while it runs; 0: no pauses).
METERLOG_PURGE_PAUSE_PERCENT = env_int("METERLOG_PURGE_PAUSE_PERCENT", 100)
# A partition DETACH queues every ingest and read of its class while it waits: short waits.
METERLOG_PURGE_DDL_LOCK_TIMEOUT_MS = env_int("METERLOG_PURGE_DDL_LOCK_TIMEOUT_MS", 70)
# Archive before purge (logs/retention/archiving.py): when on, the purge first writes the rows
# it is about to delete to gzip NDJSON files in METERLOG_ARCHIVE_DIR (the archive_logs layout,
# one file per account, month and run), verifies them, and deletes an account's rows only then.
METERLOG_ARCHIVE_BEFORE_PURGE = env_bool("METERLOG_ARCHIVE_BEFORE_PURGE", False)
METERLOG_ARCHIVE_DIR = Path(env_str("METERLOG_ARCHIVE_DIR", str(VAR_DIR / "archive")))
# Rollups outlive raw rows: whole UTC months older than this many go (never before an
# account's raw rows), so a standard account still sees two years of trend.
ROLLUP_RETENTION_MONTHS = env_int("ROLLUP_RETENTION_MONTHS", 25)
# How long analytics.UsageMinute keeps a minute (older late records are counted from raw rows).
METERLOG_MINUTE_ROLLUP_HOURS = env_int("METERLOG_MINUTE_ROLLUP_HOURS", 48)

# Mail (console.mail): EMAIL_URL, or EMAIL_HOST / EMAIL_PORT / EMAIL_HOST_USER /
# EMAIL_HOST_PASSWORD / EMAIL_USE_TLS / EMAIL_USE_SSL; with neither, DEBUG writes mails as
# files under var/mail and DEBUG off sends to localhost:25. Also EMAIL_TIMEOUT (10 s),
# DEFAULT_FROM_EMAIL, SERVER_EMAIL. See console/email_url.py.
globals().update(email_settings_from_env(debug=DEBUG, var_dir=VAR_DIR))
# The console's address as mail and webhook readers reach it ("https://meterlog.example.com",
# no trailing slash): links in alert mails and webhooks, report mails, unsubscribe links.
METERLOG_BASE_URL = env_str("METERLOG_BASE_URL", "http://localhost:8000")

# Alert notifications (alerts/notifications.py): tries per delivery in all, and the backoff
# between them (seconds x 2^n with full jitter, capped).
METERLOG_ALERT_DELIVERY_TRIES = env_int("METERLOG_ALERT_DELIVERY_TRIES", 5)
METERLOG_ALERT_RETRY_BACKOFF_SECONDS = env_int("METERLOG_ALERT_RETRY_BACKOFF_SECONDS", 30)
METERLOG_ALERT_RETRY_BACKOFF_MAX_SECONDS = env_int("METERLOG_ALERT_RETRY_BACKOFF_MAX_SECONDS", 3600)
# Webhooks to loopback / private / link-local addresses (SSRF into the server's network) are
# refused unless this is on; on by default with DEBUG only.
METERLOG_WEBHOOK_ALLOW_PRIVATE = env_bool("METERLOG_WEBHOOK_ALLOW_PRIVATE", DEBUG)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["console.api_auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "console.api_errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Meterlog API",
    "DESCRIPTION": "Ingest and query the usage log of an LLM API gateway.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
}

IMPORT_EXPORT_USE_TRANSACTIONS = True  # admin imports: a file with any bad row writes nothing

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The web server's access log (gunicorn's, or runserver's django.server) already has a
    # line for every request with its status, so django.request's own line for a 4xx (and,
    # for a 403, PermissionDenied's traceback) is dropped: a refused or missing page is an
    # expected answer, not an error. 5xx stay, with their traceback.
    "filters": {"no_client_errors": {"()": "console.log_filters.NoClientErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.request": {"filters": ["no_client_errors"]},
    },
}
