"""The access log (audit trail) of an account: the one writer, and the owners' read.

Services call `record_event` inside their own transaction, so an action and its event are
committed together or not at all; views never write events. The logs app (exports) calls
it too: logs may import console, never the other way round.
"""

from dataclasses import dataclass

from django.db.models import QuerySet

from console.login_throttle import client_ip
from console.models import Account, AuditAction, AuditEvent

ACCESS_LOG_PAGE = 50


@dataclass(frozen=True)
class Actor:
    """Who does something in the console: the user and the address they came from."""

    user: object = None
    ip: str | None = None

    @classmethod
    def from_request(cls, request) -> "Actor":
        user = request.user if request.user.is_authenticated else None
        return cls(user=user, ip=client_ip(request))


def record_event(
    *, account: Account, action: AuditAction | str, actor: Actor | None = None, details: dict | None = None
) -> AuditEvent:
    """Append one event to the account's access log."""
    actor = actor or Actor()
    user = actor.user if actor.user is not None and actor.user.is_authenticated else None
    return AuditEvent.objects.create(
        account=account,
        user=user,
        username=user.get_username() if user is not None else "",
        action=AuditAction(action),
        details=details or {},
        ip_address=actor.ip or None,
    )


def access_log_page(*, account: Account, before: int | None = None) -> tuple[list[AuditEvent], int | None]:
    """One page of the account's events, newest first, and the id to pass as `before` for
    the next (older) page, or None on the last page. Keyset on id: each page is one index
    range scan (auditevent_account_id) however long the trail grows."""
    events: QuerySet = AuditEvent.objects.filter(account=account)
    if before is not None:
        events = events.filter(id__lt=before)
    page = list(events.select_related("user").order_by("-id")[: ACCESS_LOG_PAGE + 1])
    if len(page) > ACCESS_LOG_PAGE:
        page = page[:ACCESS_LOG_PAGE]
        return page, page[-1].pk
    return page, None
