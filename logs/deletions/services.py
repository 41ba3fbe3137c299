"""Writes of deletion requests: filing, the operator's decision and carrying it out.

Every step writes its DeletionEvent in the same transaction as the request's new state, so
the audit trail and the request never disagree. State changes are conditional UPDATEs
(`WHERE status = <expected>`): two operators deciding at once, or a task delivered twice,
change the request once and the loser does nothing.

Rollups: a deletion request usually wants the data gone (a customer's GDPR erasure), so
after the rows are deleted the account's rollups of the days they were on are rebuilt from
the rows that are left, by the analytics app's rebuild registered with
`register_rollup_rebuild` when Django starts (logs does not import analytics). Days past
the account's retention horizon are not rebuilt (their raw rows may already be purged and
the rollups are their only record): the rebuild itself skips them.
"""

import logging
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from console.audit import Actor, record_event
from console.models import Account, AuditAction
from logs.deletions import deletes
from logs.deletions.models import DeletionAction, DeletionEvent, DeletionRequest, DeletionStatus
from logs.deletions.selectors import matching_logs

log = logging.getLogger(__name__)

# analytics.rollups.rebuild.rebuild: (account, first_local_day, last_local_day) -> result.
RollupRebuild = Callable[..., object]
_rollup_rebuild: RollupRebuild | None = None


def register_rollup_rebuild(rebuild: RollupRebuild) -> None:
    global _rollup_rebuild
    _rollup_rebuild = rebuild


class DecisionRefused(Exception):
    """The request cannot be decided (already decided, or the operator filed it)."""


# The request's own trail (DeletionEvent) has every step; the account's access log, which
# its owners read beside exports and settings changes, has the ones that change something.
_ACCESS_LOG = {
    DeletionAction.FILED: AuditAction.DELETION_REQUESTED,
    DeletionAction.APPROVED: AuditAction.DELETION_APPROVED,
    DeletionAction.REJECTED: AuditAction.DELETION_REJECTED,
    DeletionAction.DONE: AuditAction.DELETION_DONE,
    DeletionAction.FAILED: AuditAction.DELETION_FAILED,
}


def _event(request: DeletionRequest, action: str, user=None, **details) -> DeletionEvent:
    event = DeletionEvent.objects.create(request=request, action=action, user=user, details=details)
    if action in _ACCESS_LOG:
        summary = {key: details[key] for key in ("reason", "note", "rows_deleted", "error") if key in details}
        record_event(
            account=request.account,
            action=_ACCESS_LOG[action],
            actor=Actor(user=user),
            details={"request": request.pk, **_filter_details(request), **summary},
        )
    return event


def _filter_details(request: DeletionRequest) -> dict:
    return {
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "api_key": request.api_key,
        "request_ids": len(request.request_ids),
    }


@transaction.atomic
def deletion_file(
    *, account: Account, user, reason: str, start, end, api_key: str = "", request_ids=()
) -> DeletionRequest:
    """An owner's request (validated by forms.DeletionRequestForm); waits for an operator."""
    request = DeletionRequest.objects.create(
        account=account,
        filed_by=user,
        reason=reason,
        start=start,
        end=end,
        api_key=api_key,
        request_ids=list(request_ids),
    )
    _event(request, DeletionAction.FILED, user, reason=reason, **_filter_details(request))
    return request


def _decide(request: DeletionRequest, *, user, note: str, to: str) -> DeletionRequest:
    if not user.is_staff:
        raise DecisionRefused("Only an operator decides deletion requests.")
    if request.filed_by_id == user.pk:
        raise DecisionRefused("A request is decided by another person than the one who filed it.")
    now = timezone.now()
    changed = DeletionRequest.objects.filter(pk=request.pk, status=DeletionStatus.FILED).update(
        status=to, decided_by=user, decided_at=now, decision_note=note, updated_at=now
    )
    if changed != 1:
        raise DecisionRefused("This request was already decided.")
    request.refresh_from_db()
    _event(request, to, user, note=note)
    return request


@transaction.atomic
def deletion_approve(*, request: DeletionRequest, user, note: str = "") -> DeletionRequest:
    """Approve and queue the deletion (the task runs once the approval is committed)."""
    request = _decide(request, user=user, note=note, to=DeletionStatus.APPROVED)
    from logs.tasks import run_deletion_request  # logs.tasks imports this module

    pk = request.pk
    transaction.on_commit(lambda: run_deletion_request.delay(pk))
    return request


@transaction.atomic
def deletion_reject(*, request: DeletionRequest, user, note: str) -> DeletionRequest:
    return _decide(request, user=user, note=note, to=DeletionStatus.REJECTED)


def _claim(pk: int) -> DeletionRequest | None:
    """approved -> running, once: a second delivery (or a request running, done, rejected)
    finds nothing to claim."""
    with transaction.atomic():
        now = timezone.now()
        if (
            DeletionRequest.objects.filter(pk=pk, status=DeletionStatus.APPROVED).update(
                status=DeletionStatus.RUNNING, updated_at=now
            )
            != 1
        ):
            return None
        request = DeletionRequest.objects.select_related("account").get(pk=pk)
        _event(request, DeletionAction.STARTED, **_filter_details(request))
        return request


def _affected_days(request: DeletionRequest):
    """The account's local days holding matching rows (read before they go)."""
    bounds = matching_logs(request).aggregate(first=Min("timestamp"), last=Max("timestamp"))
    if bounds["first"] is None:
        return None
    zone = ZoneInfo(request.account.timezone)
    return bounds["first"].astimezone(zone).date(), bounds["last"].astimezone(zone).date()


def _rebuild_rollups(request: DeletionRequest, days) -> dict:
    if days is None or _rollup_rebuild is None:
        return {}
    first, last = days
    result = _rollup_rebuild(request.account, first, last)
    skipped = getattr(result, "skipped_before", None)
    return {
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "skipped_before": skipped.isoformat() if skipped else None,
    }


def deletion_run(pk: int, *, batch_rows: int = deletes.BATCH_ROWS) -> DeletionRequest | None:
    """Carry out an approved request; None when there is nothing to do (not approved, or
    already claimed by another delivery of the task)."""
    request = _claim(pk)
    if request is None:
        log.info("deletion request %s: not approved or already claimed; nothing done", pk)
        return None
    result = deletes.DeletionResult()
    try:
        days = _affected_days(request)
        result = deletes.delete_matching_rows(request, batch_rows=batch_rows)
        rollups = _rebuild_rollups(request, days)
    except Exception as exc:
        with transaction.atomic():
            _finish(request, DeletionStatus.FAILED, result, error=repr(exc)[:2000])
        log.exception("deletion request %s failed after %d rows", pk, result.deleted)
        raise
    with transaction.atomic():
        _finish(request, DeletionStatus.DONE, result, rollups=rollups)
    log.info("deletion request %s: %d rows deleted in %d batches", pk, result.deleted, result.batches)
    return request


def _finish(request: DeletionRequest, status: str, result: deletes.DeletionResult, **details) -> None:
    now = timezone.now()
    request.status, request.rows_deleted, request.finished_at, request.updated_at = status, result.deleted, now, now
    request.save(update_fields=["status", "rows_deleted", "finished_at", "updated_at"])
    _event(
        request,
        DeletionAction.DONE if status == DeletionStatus.DONE else DeletionAction.FAILED,
        rows_deleted=result.deleted,
        batches=result.batches,
        tables=result.tables,
        **details,
    )


def fail_stale_deletions(*, now=None) -> int:
    """Beat (with the stale export and import jobs): a request still running with no batch
    for METERLOG_JOB_STALE_MINUTES lost its worker; it is marked failed with the rows it had
    deleted (an owner files a new request for the rest). Each by its own conditional UPDATE,
    so a request that finishes meanwhile is left alone."""
    now = now or timezone.now()
    minutes = settings.METERLOG_JOB_STALE_MINUTES
    stale = DeletionRequest.objects.filter(
        status=DeletionStatus.RUNNING, updated_at__lt=now - timedelta(minutes=minutes)
    )
    marked = 0
    for request in stale[:100]:
        with transaction.atomic():
            if stale.filter(pk=request.pk).update(status=DeletionStatus.FAILED, finished_at=now, updated_at=now):
                _event(
                    request,
                    DeletionAction.FAILED,
                    rows_deleted=request.rows_deleted or 0,
                    error=f"the worker stopped: no batch for {minutes} minutes",
                )
                marked += 1
    return marked
