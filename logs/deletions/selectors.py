"""Reads of deletion requests: an account's requests (its owners' page), the ones waiting
for an operator, and how many log rows a request matches now (through the tenant gate)."""

from django.db.models import QuerySet

from console.models import Account
from logs.deletions.models import DeletionEvent, DeletionRequest, DeletionStatus
from logs.gate import request_logs

# The operator's page says "at least 10,000" past this: no COUNT(*) over an unbounded set.
MATCH_COUNT_CAP = 10_000


def requests_of_account(*, account: Account) -> QuerySet:
    return DeletionRequest.objects.filter(account=account).select_related("filed_by", "decided_by")


def request_of_account(*, account: Account, pk: int) -> DeletionRequest | None:
    """One request of the account, or None (another account's request is not found)."""
    return requests_of_account(account=account).filter(pk=pk).first()


def pending_requests() -> QuerySet:
    """Every account's requests waiting for an operator, oldest first (operators only)."""
    return (
        DeletionRequest.objects.filter(status=DeletionStatus.FILED)
        .select_related("account", "filed_by")
        .order_by("created_at", "id")
    )


def decided_requests(*, limit: int) -> list[DeletionRequest]:
    return list(
        DeletionRequest.objects.exclude(status=DeletionStatus.FILED)
        .select_related("account", "filed_by", "decided_by")
        .order_by("-decided_at", "-id")[:limit]
    )


def events_of(request: DeletionRequest) -> QuerySet:
    return DeletionEvent.objects.filter(request=request).select_related("user").order_by("at", "id")


def matching_logs(request: DeletionRequest) -> QuerySet:
    """The account's log rows the request covers (the gate scopes them to its account)."""
    rows = request_logs(account=request.account).filter(timestamp__gte=request.start, timestamp__lt=request.end)
    if request.api_key:
        rows = rows.filter(api_key=request.api_key)
    if request.request_ids:
        rows = rows.filter(request_id__in=request.request_ids)
    return rows


def matching_count(request: DeletionRequest) -> tuple[int, bool]:
    """(rows, capped): the rows the request matches now, counted up to MATCH_COUNT_CAP."""
    found = len(matching_logs(request).values_list("id", flat=True)[: MATCH_COUNT_CAP + 1])
    return min(found, MATCH_COUNT_CAP), found > MATCH_COUNT_CAP
