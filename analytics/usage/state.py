"""What a read needs to know of an account's rollups: the zone of its daily rows and the
time its slices are complete from."""

from datetime import datetime
from zoneinfo import ZoneInfo

from analytics.models import RollupState
from console.models import Account
from logs import gate


def rollup_state(account: Account) -> tuple[ZoneInfo, dict[str, datetime | None]]:
    """The zone of the account's daily rows and, per slice column, the time its slices are
    complete from (remembered on the Account object: a page asks for many charts of one
    account)."""
    cached = getattr(account, "_rollup_state", None)
    if cached is None:
        row = (
            gate.rollup_rows(RollupState, account)
            .values_list("day_timezone", "slices_since", "key_slices_since")
            .first()
        )
        zone, since, key_since = row if row else (None, None, None)
        since_of = {"model": since, "status": since, "api_key": key_since}
        cached = account._rollup_state = (ZoneInfo(zone or account.timezone), since_of)
    return cached


def day_zone(account: Account) -> ZoneInfo:
    return rollup_state(account)[0]
