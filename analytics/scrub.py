"""`manage.py scrub_secrets`: apply the current secret rules (logs.secrets) to what an
account stored under older ones, everywhere the text can be: the log rows (logs.scrub), the
ApiKey rows, export records' filters, and the rollups that group by API key
(analytics.rollups.rekey), so no table keeps a secret that ingest would mask today.

Here rather than in logs because the rollups are analytics' (logs does not import it, but
for ingest's rollup write). Idempotent: a second run changes nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass

from analytics.rollups.rekey import rename_api_keys
from console.models import Account
from logs import scrub


@dataclass
class ScrubResult:
    account: str
    scanned: int = 0
    changed: int = 0  # log rows
    api_keys: int = 0
    rollup_rows: int = 0
    exports: int = 0

    @property
    def total_changed(self) -> int:
        return self.changed + self.api_keys + self.rollup_rows + self.exports


def scrub_account_secrets(
    account: Account, *, batch_size: int = 1000, dry_run: bool = False, progress: Callable | None = None
) -> ScrubResult:
    """Re-scrub one account; with `dry_run` count what would change and write nothing."""
    result = ScrubResult(account=account.slug)
    rows = scrub.scrub_log_rows(account, batch_size=batch_size, dry_run=dry_run, progress=progress)
    result.scanned, result.changed = rows.scanned, rows.changed
    # After the rows: ingest keeps adding rows under the masked value meanwhile, and the
    # rollups then need only their old values renamed.
    result.api_keys = scrub.scrub_api_keys(account, dry_run=dry_run)
    result.rollup_rows = rename_api_keys(account, scrub.masked_identifier, dry_run=dry_run)
    result.exports = scrub.scrub_export_filters(account, dry_run=dry_run)
    return result
