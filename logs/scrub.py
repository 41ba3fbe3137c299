"""Re-scrubbing stored rows with the current secret rules (logs.secrets), for rows stored
before them: earlier releases masked fewer spellings (only `Bearer sk-…`-like keys), and
the rules grow (long hex keys). `analytics.scrub` runs these per account and then the
rollups; `manage.py scrub_secrets` is the entry point.

What ingest would store today is what a row gets: an api_key that is a secret becomes its
masked form, request_params / error_message / error_details / user_agent are scrubbed, the
ApiKey row moves to the secret's fingerprint (merged into the row that fingerprint already
has), and export records' api_key filters are masked. Every function is idempotent: what it
writes, it leaves as it is on a second run.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q

from console.models import Account
from logs import encryption, gate
from logs.guard import allow_log_writes
from logs.locks import lock_account_ingest
from logs.models import ApiKey, ExportRecord
from logs.secrets import key_fingerprint, looks_like_secret, mask_secret, scrub_json, scrub_text

# Read per batch: the row's partition keys (so its UPDATE touches one partition) and what
# may hold a secret.
_FIELDS = ("id", "timestamp", "retention_days", "api_key", "request_params", "error_message", "error_details",
           "user_agent", "encrypted")  # fmt: skip
_ENCRYPTED = ("user_agent", "request_params", "error_details")  # logs.encryption's order


@dataclass
class RowsScrubbed:
    scanned: int = 0
    changed: int = 0


def masked_identifier(value: str) -> str | None:
    """The identifier ingest stores today for an api_key stored as `value`, when it differs."""
    if value and looks_like_secret(value):
        return mask_secret(value)
    return None


def scrubbed_fields(row: dict) -> dict:
    """The fields of a stored row (a dict of _FIELDS) that the current rules change, with
    their new values."""
    new = {}
    if (identifier := masked_identifier(row["api_key"])) is not None:
        new["api_key"] = identifier
    if row.get("encrypted"):
        # Scrub the plaintext, never the tokens; what changed is stored encrypted again.
        row = {**row, **dict(zip(_ENCRYPTED, encryption.decrypt_values(*(row[n] for n in _ENCRYPTED)), strict=True))}
    for name, scrub in (("request_params", scrub_json), ("error_details", scrub_json),
                        ("error_message", scrub_text), ("user_agent", scrub_text)):  # fmt: skip
        value = row[name]
        if value is not None and value != "" and (clean := scrub(value)) != value:
            new[name] = clean
    if row.get("encrypted"):
        new.update(encryption.encrypted_values({name: new[name] for name in _ENCRYPTED if name in new}))
    return new


def scrub_log_rows(
    account: Account, *, batch_size: int = 1000, dry_run: bool = False, progress: Callable | None = None
) -> RowsScrubbed:
    """Walk the account's rows in (timestamp, id) order, `batch_size` at a time (keyset: each
    batch is one range of the account's time index, page 1 and page 10,000 cost the same),
    and rewrite the rows the current rules change, one transaction per batch."""
    result = RowsScrubbed()
    after = None
    while True:
        rows = gate.request_logs(account=account)
        if after is not None:
            # The redundant >= bounds the index range (and prunes older partitions).
            rows = rows.filter(timestamp__gte=after[0]).filter(Q(timestamp__gt=after[0]) | Q(id__gt=after[1]))
        batch = list(rows.order_by("timestamp", "id").values(*_FIELDS)[:batch_size])
        if not batch:
            return result
        updates = [(row, new) for row in batch if (new := scrubbed_fields(row))]
        if updates and not dry_run:
            # The one edit of stored rows there is: re-masking secrets (logs.guard).
            with allow_log_writes("scrub"):
                for row, new in updates:
                    gate.request_logs(account=account).filter(
                        id=row["id"], timestamp=row["timestamp"], retention_days=row["retention_days"]
                    ).update(**new)
        result.scanned += len(batch)
        result.changed += len(updates)
        after = (batch[-1]["timestamp"], batch[-1]["id"])
        if progress is not None:
            progress(result)


def scrub_api_keys(account: Account, *, dry_run: bool = False) -> int:
    """Move every ApiKey whose identifier is a secret to the masked identifier and the
    secret's fingerprint (trimmed, without Bearer), as ingest creates it today; when the
    account already has that fingerprint (the same secret stored masked in another
    spelling), merge into it: earliest first_seen, latest last_seen, a display name kept.
    Under the account's ingest lock: ingest upserts these rows. Returns the rows changed."""
    changed = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            lock_account_ingest(cursor, account)
        for key in ApiKey.objects.filter(account=account).order_by("pk"):
            identifier = masked_identifier(key.identifier)
            if identifier is None:
                continue
            changed += 1
            if dry_run:
                continue
            fingerprint = key_fingerprint(key.identifier)
            target = ApiKey.objects.filter(account=account, fingerprint=fingerprint).exclude(pk=key.pk).first()
            if target is None:
                key.identifier, key.fingerprint = identifier, fingerprint
                key.save(update_fields=["identifier", "fingerprint"])
                continue
            target.first_seen = min(target.first_seen, key.first_seen)
            target.last_seen = max(target.last_seen, key.last_seen)
            target.display_name = target.display_name or key.display_name
            target.identifier = identifier
            key.delete()
            target.save(update_fields=["first_seen", "last_seen", "display_name", "identifier"])
    return changed


def scrub_export_filters(account: Account, *, dry_run: bool = False) -> int:
    """Mask secret api_key values in the filters that export records keep (a user who
    filtered the log by a key stored in the clear left it there). Returns the rows changed."""
    changed = 0
    for record in ExportRecord.objects.filter(account=account, filters__has_key="api_key").order_by("pk"):
        values = record.filters["api_key"]
        many = isinstance(values, list)
        masked = [(masked_identifier(v) or v) if isinstance(v, str) else v for v in (values if many else [values])]
        new = masked if many else masked[0]
        if new == values:
            continue
        changed += 1
        if not dry_run:
            record.filters = {**record.filters, "api_key": new}
            record.save(update_fields=["filters"])
    return changed
