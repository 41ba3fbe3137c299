"""Small factories shared by the tests. Rows go in through the ORM with the same stamping
ingest does (retention class, partition), so SQLite and PostgreSQL see identical data."""

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model

from console.models import Account, Membership
from logs.models import RequestLog
from logs.partitions import ensure_partitions

_seq = itertools.count(1)


def make_account(slug: str, **fields) -> Account:
    fields.setdefault("name", slug.title())
    return Account.objects.create(slug=slug, **fields)


def make_user(email: str, *, account: Account | None = None, role: str = "owner", password: str = "pw-for-tests-1"):
    user = get_user_model().objects.create_user(username=email, email=email, password=password)
    if account is not None:
        Membership.objects.create(user=user, account=account, role=role)
    return user


def make_log(account: Account, **fields) -> RequestLog:
    n = next(_seq)
    fields.setdefault("request_id", f"req-{n:06d}")
    fields.setdefault("timestamp", datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    fields.setdefault("model", "gpt-4o-mini")
    fields.setdefault("status", "success")
    fields.setdefault("prompt_tokens", 100)
    fields.setdefault("completion_tokens", 20)
    fields.setdefault("total_tokens", fields["prompt_tokens"] + fields["completion_tokens"])
    fields.setdefault("cost", Decimal("0.000027000000"))
    fields.setdefault("api_key", "team-a")
    fields.setdefault("retention_days", account.retention_days)
    ensure_partitions(fields["retention_days"], [fields["timestamp"]])
    return RequestLog.objects.create(account=account, **fields)


def ingest_record(n: int, **fields) -> dict:
    """A valid ingest record (request id req-<n>), with `fields` over the defaults."""
    base = {
        "request_id": f"req-{n}",
        "timestamp": f"2026-11-20T12:00:{n % 60:02d}Z",
        "model": "gpt-4o-mini",
        "status": "success",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": "0.000027",
    }
    base.update(fields)
    return base


def subprocess_database_url() -> str:
    """The test database as a DATABASE_URL for a server or worker started by a test."""
    from django.db import connection

    db = connection.settings_dict
    auth = db["USER"] or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
