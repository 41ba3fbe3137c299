"""Writes of the analytics pages: a chart's CSV download goes into the account's access log."""

from console.audit import Actor, record_event
from console.models import Account, AuditAction

# Parameters of the page that choose the file, not the rows in it.
NOT_FILTERS = {"format", "chart"}


def record_chart_csv(*, account: Account, actor: Actor, tab: str, chart: str, period, params) -> None:
    filters = {name: ",".join(params.getlist(name)) for name in params if name not in NOT_FILTERS}
    details = {
        "tab": tab,
        "chart": chart,
        "period": f"{period.first_day:%Y-%m-%d} – {period.last_day:%Y-%m-%d}",
        "filters": filters,
    }
    record_event(account=account, action=AuditAction.REPORT_EXPORTED, actor=actor, details=details)
