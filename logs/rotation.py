"""Key rotation of encrypted log rows (`manage.py rotate_encryption_key`).

FIELD_ENCRYPTION_KEY lists keys newest first. After a new key is put in front, old rows are
still read with the old keys; this re-encrypts them with the newest (MultiFernet.rotate,
which keeps each token's timestamp) so that the old keys can be removed. Per account, the
encrypted rows are walked by keyset (timestamp, id), `batch_rows` at a time; only rows that
the newest key alone cannot read are rewritten, each batch in its own transaction inside
allow_log_writes("rotate") (logs.guard). A second run rewrites 0 rows, and a run that was
stopped starts over cheaply: committed batches are read by the newest key and skipped.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q

from console.models import Account
from logs import encryption, gate
from logs.guard import allow_log_writes

_FIELDS = ("id", "timestamp", "retention_days", "user_agent", "request_params", "error_details")


@dataclass
class RowsRotated:
    scanned: int = 0  # encrypted rows read
    rotated: int = 0  # rows re-encrypted with the newest key (or that would be, in a dry run)
    unreadable: int = 0  # rows no configured key reads (left as they are)


def rotate_account(
    account: Account, *, batch_rows: int = 1000, dry_run: bool = False, progress: Callable | None = None
) -> RowsRotated:
    """Re-encrypt the account's rows that the newest key cannot read. A row that no
    configured key reads is counted as unreadable and left as it is."""
    encryption.require_keys()
    result = RowsRotated()
    after = None
    while True:
        rows = gate.request_logs(account=account).filter(encrypted=True)
        if after is not None:
            # The redundant >= bounds the index range (and prunes older partitions).
            rows = rows.filter(timestamp__gte=after[0]).filter(Q(timestamp__gt=after[0]) | Q(id__gt=after[1]))
        batch = list(rows.order_by("timestamp", "id").values(*_FIELDS)[:batch_rows])
        if not batch:
            return result
        updates = []
        for row in batch:
            try:
                new = encryption.rotated_values(row["user_agent"], row["request_params"], row["error_details"])
            except encryption.EncryptionKeyError:
                result.unreadable += 1
                continue
            if new is not None:
                updates.append((row, new))
        if updates and not dry_run:
            with allow_log_writes("rotate"):
                for row, new in updates:
                    gate.request_logs(account=account).filter(
                        id=row["id"], timestamp=row["timestamp"], retention_days=row["retention_days"]
                    ).update(**new)
        result.scanned += len(batch)
        result.rotated += len(updates)
        after = (batch[-1]["timestamp"], batch[-1]["id"])
        if progress is not None:
            progress(result)
