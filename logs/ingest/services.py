"""Storing a batch of ingest records for one account.

The pipeline: validate each record in plain Python, drop in-batch repeats (the first
wins), price what came without a cost (a computed cost the column cannot hold rejects its
record), mask secret API keys, apply privacy mode, encrypt (log encryption, logs.encryption), create
the partitions the rows need, then in ONE transaction: lock the account, skip request_ids
already stored, insert the rest (COPY on PostgreSQL, bulk_create on SQLite), and upsert
the account's ApiKey and AccountModel rows with one statement each.

Why a lock and a SELECT rather than a unique index: on the partitioned PostgreSQL table a
unique index must include the partition keys (retention_days, timestamp), so it cannot
stop a request_id from coming back with another timestamp. `pg_advisory_xact_lock` keyed
by the account serialises concurrent batches of one account (other accounts do not wait);
under READ COMMITTED each statement takes a fresh snapshot, so the SELECT that follows the
lock sees every batch committed before it. On SQLite the settings open transactions with
BEGIN IMMEDIATE (one writer at a time) and a unique (account_id, request_id) index backs it.
"""

import ipaddress
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from analytics import rollups
from console import privacy
from console.models import Account
from logs import encryption, gate
from logs.ingest import bounds
from logs.ingest.validation import validate_record
from logs.locks import lock_account_ingest
from logs.models import AccountModel, ApiKey, RequestLog
from logs.partitions import ensure_partitions, is_postgres
from logs.prices.book import PriceBook, compute_cost

log = logging.getLogger(__name__)

# Column order of the row tuples; one builder (`_row`) serves COPY and bulk_create.
# JSON columns hold the JSON text made by validation: what COPY sends to jsonb as is.
COLUMNS = (
    "account_id",
    "retention_days",
    "request_id",
    "timestamp",
    "model",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost",
    "price_id",
    "api_key",
    "ip_address",
    "user_agent",
    "latency_ms",
    "request_params",
    "tags",
    "error_code",
    "error_message",
    "error_details",
    "ingested_at",
    "encrypted",
)
_REQUEST_ID = COLUMNS.index("request_id")
_TIMESTAMP = COLUMNS.index("timestamp")
_MODEL = COLUMNS.index("model")
_API_KEY = COLUMNS.index("api_key")
_JSON_NAMES = ("request_params", "tags", "error_details")
_COPY_SQL = f"COPY {RequestLog._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN"
# ARRAY(SELECT unnest(...)) hides the ids from the planner: with a literal array it
# estimates the selectivity of every id for every partition and index, which cost 10-40 ms
# of planning per batch over a few dozen partitions; this way each populated partition is
# one index scan with the ids as a runtime array (execution: a few ms).
# The account's WHERE comes from the gate with the retention classes as a parameter the
# planner sees: it prunes the other classes' partitions (20 ms instead of 28 ms per batch of
# 1,000 at 10 M rows).
_EXISTING_SQL = "SELECT request_id FROM {table} WHERE {where} AND request_id = ANY(ARRAY(SELECT unnest(%s::text[])))"
_SQLITE_IN_CHUNK = 5_000
PRIVACY_PREFIX = privacy.IP_PREFIX


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def ingest_records(*, account: Account, records: list, source: str = "api") -> IngestResult:
    """Validate and store raw records (ingest field format) for `account`.

    Valid records are stored even when others are rejected; a request_id already stored
    for the account, or repeated in the batch, is counted as a duplicate and not stored.
    """
    now = timezone.now()
    result = IngestResult()
    batch: list[dict] = []
    positions: list[int] = []  # each batch record's index in `records`
    seen: set[str] = set()
    for index, item in enumerate(records):
        clean, errors = validate_record(item, now=now)
        if errors:
            result.rejected.append({"index": index, "request_id": _request_id_of(item), "errors": errors})
        elif clean["request_id"] in seen:
            result.duplicates += 1
        else:
            seen.add(clean["request_id"])
            batch.append(clean)
            positions.append(index)
    if not batch:
        return result

    _price(account, batch)
    batch = _reject_unstorable_costs(batch, positions, result)
    if not batch:
        return result
    fingerprints = _mask_api_keys(batch)
    if account.privacy_mode:
        _apply_privacy(batch)
    if account.encryption_enabled:
        # After validation, scrubbing and privacy mode; before the rows are built: the
        # database never receives the plaintext. A missing or bad key rejects the batch
        # (EncryptionKeyError, a 503) rather than storing it in the clear.
        for clean in batch:
            encryption.encrypt_clean(clean)
    rows = [_row(account, clean, now) for clean in batch]

    ensure_partitions(account.retention_days, {clean["timestamp"] for clean in batch})
    inserted = _store(account, rows, fingerprints)
    result.accepted = len(inserted)
    result.duplicates += len(rows) - len(inserted)
    log.debug("ingest %s into %s: %s accepted, %s duplicates, %s rejected",
              source, account.slug, result.accepted, result.duplicates, len(result.rejected))  # fmt: skip
    return result


def _reject_unstorable_costs(batch: list[dict], positions: list[int], result: IngestResult) -> list[dict]:
    """A sent cost was bounded by validation; a computed one (a price x 2^31 tokens) can
    still exceed the column: reject that record by name, keep the others."""
    kept = []
    for index, clean in zip(positions, batch, strict=True):
        try:
            if clean["price_id"] is not None:
                bounds.COST.quantize(clean["cost"])
        except bounds.OutOfRange as exc:
            message = f"The cost computed from the model's price is out of range: {exc}"
            result.rejected.append({"index": index, "request_id": clean["request_id"], "errors": {"cost": [message]}})
            continue
        kept.append(clean)
    result.rejected.sort(key=lambda rejection: rejection["index"])
    return kept


def _request_id_of(item) -> str | None:
    """The request_id to echo in a rejection, when it can be echoed at all."""
    request_id = item.get("request_id") if isinstance(item, dict) else None
    if not isinstance(request_id, str):
        return None
    try:
        request_id.encode("utf-8")  # a lone surrogate would break the JSON response
    except UnicodeEncodeError:
        return None
    return request_id[:255]


def _mask_api_keys(batch: list[dict]) -> dict[str, str | None]:
    """Replace each api_key by its identifier (masked if it is a secret); returns
    {request_id: fingerprint of the key as sent} for the ApiKey upsert. The raw secret
    lives only in this request's memory."""
    by_raw: dict[str, tuple[str, str]] = {}
    fingerprints: dict[str, str | None] = {}
    for clean in batch:
        raw = clean["api_key"]
        if not raw:
            fingerprints[clean["request_id"]] = None
            continue
        if raw not in by_raw:
            by_raw[raw] = (ApiKey.identifier_for(raw), ApiKey.fingerprint_for(raw))
        clean["api_key"], fingerprints[clean["request_id"]] = by_raw[raw]
    return fingerprints


def privacy_ip(address: str) -> str:
    """The network address of the /24 (IPv4) or /48 (IPv6) holding `address`."""
    ip = ipaddress.ip_address(address)
    return str(ipaddress.ip_network(f"{ip}/{PRIVACY_PREFIX[ip.version]}", strict=False).network_address)


def _apply_privacy(batch: list[dict]) -> None:
    """Drop console.privacy.DROPPED_FIELDS and shorten the IP, before the row is built: the
    database never receives what privacy mode drops."""
    for clean in batch:
        clean["request_params"], clean["request_params_json"] = {}, "{}"
        clean["user_agent"] = ""
        clean["error_details"], clean["error_details_json"] = None, None
        if clean["ip_address"]:
            clean["ip_address"] = privacy_ip(clean["ip_address"])


def _price(account: Account, batch: list[dict]) -> None:
    """A record that carries a cost keeps it (price NULL); others get the price in force
    at their timestamp, or stay unpriced (cost NULL) when no price matches."""
    unpriced = [clean for clean in batch if clean["cost"] is None]
    for clean in batch:
        clean["price_id"] = None
    if not unpriced:
        return
    book = PriceBook.load(account=account, models={clean["model"] for clean in unpriced})
    # PriceBook scans every prefix row per lookup; narrowing the book to one model once
    # keeps a batch of 1,000 records from scanning the whole prefix list 1,000 times.
    per_model: dict[str, PriceBook] = {}
    for clean in unpriced:
        model = clean["model"]
        model_book = per_model.get(model)
        if model_book is None:
            model_book = per_model[model] = PriceBook(
                exact={model: book.exact.get(model, [])},
                prefixes=[p for p in book.prefixes if model.startswith(p.model)],
            )
        price = model_book.price_for(model, clean["timestamp"])
        if price is not None:
            clean["price_id"] = price.pk
            clean["cost"] = compute_cost(
                price,
                prompt_tokens=clean["prompt_tokens"],
                completion_tokens=clean["completion_tokens"],
                cached_tokens=clean["cached_tokens"],
            )


def _row(account: Account, clean: dict, now: datetime) -> tuple:
    return (
        account.pk,
        account.retention_days,
        clean["request_id"],
        clean["timestamp"],
        clean["model"],
        clean["status"],
        clean["prompt_tokens"],
        clean["completion_tokens"],
        clean["total_tokens"],
        clean["cached_tokens"],
        clean["reasoning_tokens"],
        clean["cost"],
        clean["price_id"],
        clean["api_key"],
        clean["ip_address"],
        clean["user_agent"],
        clean["latency_ms"],
        clean["request_params_json"],
        clean["tags_json"],
        clean["error_code"],
        clean["error_message"],
        clean["error_details_json"],
        now,
        clean.get("encrypted"),
    )


def _store(account: Account, rows: list[tuple], fingerprints: dict[str, str | None]) -> list[tuple]:
    """Insert the rows whose request_id the account does not have yet; returns them."""
    ids = [row[_REQUEST_ID] for row in rows]
    with transaction.atomic(), connection.cursor() as cursor:
        if is_postgres():
            lock_account_ingest(cursor, account)
            # Read under the lock: a class added by a batch that committed just before is seen.
            classes = gate.retention_classes(account=account)
            existing = set()
            if classes:
                table, where, params = gate.request_log_sql(account, classes=classes)
                cursor.execute(_EXISTING_SQL.format(table=table, where=where), [*params, ids])
                existing = {request_id for (request_id,) in cursor.fetchall()}
        else:
            existing = set()
            for start in range(0, len(ids), _SQLITE_IN_CHUNK):
                chunk = ids[start : start + _SQLITE_IN_CHUNK]
                existing.update(
                    RequestLog.objects.filter(account=account, request_id__in=chunk).values_list(
                        "request_id", flat=True
                    )
                )
        new_rows = [row for row in rows if row[_REQUEST_ID] not in existing]
        if not new_rows:
            return []
        if is_postgres():
            _copy_rows(cursor, new_rows)
        else:
            RequestLog.objects.bulk_create([_model_from_row(row) for row in new_rows])
        _upsert_seen(cursor, account, new_rows, fingerprints)
        # Same transaction: the rollups are never behind the rows, and only the rows stored
        # here (not the duplicates) are counted.
        rollup_classes = sorted({*classes, account.retention_days}) if is_postgres() else None
        stored = [dict(zip(COLUMNS, row, strict=True)) for row in new_rows]
        rollups.add_ingested(cursor, account, stored, rollup_classes)
    return new_rows


def _copy_rows(cursor, rows: list[tuple]) -> None:
    # COPY is the fastest way in (about 3x pipelined INSERTs on this table). psycopg
    # adapts each value by its type and escapes it for COPY's text format.
    with cursor.cursor.copy(_COPY_SQL) as copy:
        for row in rows:
            copy.write_row(row)


def _model_from_row(row: tuple) -> RequestLog:
    fields = dict(zip(COLUMNS, row, strict=True))
    for name in _JSON_NAMES:
        if fields[name] is not None:
            fields[name] = json.loads(fields[name])
    return RequestLog(**fields)


def _upsert_seen(cursor, account: Account, rows: list[tuple], fingerprints: dict[str, str | None]) -> None:
    """Keep ApiKey and AccountModel first/last seen: one statement each per batch."""
    keys: dict[str, tuple[str, list[datetime]]] = {}
    models: dict[str, list[datetime]] = {}
    for row in rows:
        ts = row[_TIMESTAMP]
        fp = fingerprints[row[_REQUEST_ID]]
        if fp:
            keys.setdefault(fp, (row[_API_KEY], []))[1].append(ts)
        models.setdefault(row[_MODEL], []).append(ts)
    # Sorted, so two batches upserting the same keys take row locks in the same order.
    key_values = [
        (account.pk, identifier, fp, "", min(stamps), max(stamps)) for fp, (identifier, stamps) in sorted(keys.items())
    ]
    model_values = [(account.pk, model, min(stamps), max(stamps)) for model, stamps in sorted(models.items())]
    _upsert(
        cursor,
        ApiKey._meta.db_table,
        ("account_id", "identifier", "fingerprint", "display_name", "first_seen", "last_seen"),
        ("account_id", "fingerprint"),
        key_values,
    )
    _upsert(
        cursor,
        AccountModel._meta.db_table,
        ("account_id", "model", "first_seen", "last_seen"),
        ("account_id", "model"),
        model_values,
    )


def _upsert(cursor, table: str, columns: tuple[str, ...], conflict: tuple[str, ...], values: list[tuple]) -> None:
    """INSERT ... ON CONFLICT DO UPDATE keeping the earliest first_seen and the latest
    last_seen, so a backfill of old records never moves last_seen backwards."""
    if not values:
        return
    least, greatest = ("LEAST", "GREATEST") if is_postgres() else ("MIN", "MAX")
    # Raw SQL bypasses the field adapters: SQLite wants Django's naive-UTC text for datetimes.
    adapt = connection.ops.adapt_datetimefield_value
    group = "(" + ", ".join(["%s"] * len(columns)) + ")"
    params = [adapt(v) if isinstance(v, datetime) else v for value in values for v in value]
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([group] * len(values))} "
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET "
        f"first_seen = {least}({table}.first_seen, EXCLUDED.first_seen), "
        f"last_seen = {greatest}({table}.last_seen, EXCLUDED.last_seen)",
        params,
    )
