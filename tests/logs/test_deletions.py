"""Deletion requests (issue 15): an owner files one, an operator approves or rejects it, a
task deletes exactly the matching rows in batches and the audit trail records each step.
SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum
from django.urls import reverse

from analytics.models import Projection, UsageDay
from console.models import AuditEvent
from logs.deletions import services
from logs.deletions.models import DeletionEvent, DeletionRequest, DeletionStatus
from logs.gate import request_logs
from logs.ingest.services import ingest_records
from logs.tasks import run_deletion_request
from tests.factories import make_log, make_user

pytestmark = pytest.mark.django_db

# Whole minutes: the form takes minutes.
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
START, END = NOW - timedelta(days=6), NOW - timedelta(days=2)


def fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def seed(acme, globex) -> None:
    """acme: 3 team-a and 2 team-b rows in the range, one row each side of it; globex: the
    same request ids in the range."""
    for i, days in enumerate((5, 4, 3)):
        make_log(acme, request_id=f"in-a-{i}", api_key="team-a", timestamp=NOW - timedelta(days=days))
    for i, days in enumerate((5, 3)):
        make_log(acme, request_id=f"in-b-{i}", api_key="team-b", timestamp=NOW - timedelta(days=days))
    make_log(acme, request_id="before", api_key="team-a", timestamp=START - timedelta(seconds=1))
    make_log(acme, request_id="at-end", api_key="team-a", timestamp=END)
    for rid in ("in-a-0", "in-a-1", "in-b-0"):
        make_log(globex, request_id=rid, api_key="team-a", timestamp=NOW - timedelta(days=4))


def ids(account) -> set[str]:
    return set(request_logs(account=account).values_list("request_id", flat=True))


def file(client, owner, **fields):
    client.force_login(owner)
    data = {"start": fmt(START), "end": fmt(END), "reason": "GDPR erasure for a customer", **fields}
    return client.post(reverse("logs:deletions"), data)


def approve(client, operator, req, note="checked with the customer"):
    client.force_login(operator)
    return client.post(reverse("logs:deletion_decide", args=[req.pk]), {"decision": "approve", "note": note})


def actions(req) -> list[str]:
    return list(DeletionEvent.objects.filter(request=req).order_by("at", "id").values_list("action", flat=True))


@pytest.mark.parametrize(
    ("fields", "gone"),
    [
        ({}, {"in-a-0", "in-a-1", "in-a-2", "in-b-0", "in-b-1"}),
        ({"api_key": "team-b"}, {"in-b-0", "in-b-1"}),
        ({"request_ids": "in-a-1\nin-b-0\nbefore\nnot-stored\n"}, {"in-a-1", "in-b-0"}),
        ({"api_key": "team-a", "request_ids": "in-a-0\nin-b-0"}, {"in-a-0"}),
    ],
    ids=["range", "api-key", "request-ids", "key-and-ids"],
)
def test_full_walk_deletes_exactly_the_matching_rows(
    client, acme, globex, alice, olivia, fields, gone, django_capture_on_commit_callbacks
):
    seed(acme, globex)
    acme_before, globex_before = ids(acme), ids(globex)
    response = file(client, alice, **fields)
    assert response.status_code == 302
    req = DeletionRequest.objects.get()
    assert (req.account, req.filed_by, req.status) == (acme, alice, DeletionStatus.FILED)
    assert (req.start, req.end) == (START, END)
    assert actions(req) == ["filed"]
    # Nothing is deleted before an operator approves.
    assert ids(acme) == acme_before

    with django_capture_on_commit_callbacks() as callbacks:
        assert approve(client, olivia, req).status_code == 302
    assert len(callbacks) == 1  # the task is queued once the approval is committed
    req.refresh_from_db()
    assert (req.status, req.decided_by, req.decision_note) == (
        DeletionStatus.APPROVED,
        olivia,
        "checked with the customer",
    )

    # The task, delivered twice: the second delivery does nothing.
    assert run_deletion_request(req.pk) == len(gone)
    assert run_deletion_request(req.pk) is None
    req.refresh_from_db()
    assert (req.status, req.rows_deleted) == (DeletionStatus.DONE, len(gone))
    assert ids(acme) == acme_before - gone
    assert ids(globex) == globex_before  # the same request ids in another account stay
    assert {"before", "at-end"} <= ids(acme)  # rows outside the range stay
    assert actions(req) == ["filed", "approved", "started", "done"]
    done = DeletionEvent.objects.get(request=req, action="done")
    assert done.details["rows_deleted"] == len(gone)
    assert DeletionEvent.objects.get(request=req, action="approved").user == olivia
    # The account's access log has the steps that change something, with who and the filter.
    trail = list(AuditEvent.objects.filter(account=acme).order_by("id").values_list("action", "username"))
    assert [t for t in trail if t[0].startswith("deletion")] == [
        ("deletion_requested", alice.username),
        ("deletion_approved", olivia.username),
        ("deletion_done", ""),
    ]
    done_entry = AuditEvent.objects.get(account=acme, action="deletion_done").details
    assert (done_entry["request"], done_entry["rows_deleted"]) == (req.pk, len(gone))
    assert not AuditEvent.objects.filter(account=globex, action__startswith="deletion").exists()

    # The owner sees the request, its status and its trail.
    client.force_login(alice)
    page = client.get(reverse("logs:deletion_detail", args=[req.pk])).content.decode()
    assert 'data-status="done"' in page and 'id="rows-deleted">' + str(len(gone)) in page
    assert page.count('data-action="') == 4


def test_batches_of_the_given_size(acme, globex, alice, olivia):
    seed(acme, globex)
    req = services.deletion_file(account=acme, user=alice, reason="r", start=START, end=END)
    services.deletion_approve(request=req, user=olivia)
    services.deletion_run(req.pk, batch_rows=2)
    req.refresh_from_db()
    assert req.rows_deleted == 5
    done = DeletionEvent.objects.get(request=req, action="done").details
    assert done["batches"] >= 3 and sum(done["tables"].values()) == 5


def test_reject_deletes_nothing(client, acme, globex, alice, olivia):
    seed(acme, globex)
    before = ids(acme)
    file(client, alice)
    req = DeletionRequest.objects.get()
    client.force_login(olivia)
    url = reverse("logs:deletion_decide", args=[req.pk])
    # A rejection needs a note.
    assert client.post(url, {"decision": "reject", "note": ""}).status_code == 400
    assert client.post(url, {"decision": "reject", "note": "not the customer's data"}).status_code == 302
    req.refresh_from_db()
    assert req.status == DeletionStatus.REJECTED
    assert run_deletion_request(req.pk) is None
    assert ids(acme) == before
    assert actions(req) == ["filed", "rejected"]
    rejected = AuditEvent.objects.get(account=acme, action="deletion_rejected")
    assert rejected.user == olivia and rejected.details["note"] == "not the customer's data"
    # Decided once: approving afterwards is refused.
    assert client.post(url, {"decision": "approve"}).status_code == 409
    assert DeletionRequest.objects.get().status == DeletionStatus.REJECTED


def test_only_owners_file_and_only_operators_decide(client, acme, globex, alice, charlie, bob, olivia):
    admin = make_user("adam@acme.test", account=acme, role="admin")
    for user in (charlie, admin):
        client.force_login(user)
        assert client.get(reverse("logs:deletions")).status_code == 403
        assert file(client, user).status_code == 403
    assert not DeletionRequest.objects.exists()

    file(client, alice)
    req = DeletionRequest.objects.get()
    # The owner cannot approve their own request, nor reach the operators' page.
    client.force_login(alice)
    assert approve(client, alice, req).status_code == 403
    assert client.get(reverse("logs:deletions_operator")).status_code == 403
    # Another account's owner neither sees nor acts on it.
    client.force_login(bob)
    assert client.get(reverse("logs:deletion_detail", args=[req.pk])).status_code == 404
    assert "erasure for a customer" not in client.get(reverse("logs:deletions")).content.decode()
    assert approve(client, bob, req).status_code == 403
    assert DeletionRequest.objects.get().status == DeletionStatus.FILED
    # An operator who filed a request cannot approve it either (four eyes).
    own = services.deletion_file(account=acme, user=olivia, reason="r", start=START, end=END)
    assert approve(client, olivia, own).status_code == 409
    assert DeletionRequest.objects.get(pk=own.pk).status == DeletionStatus.FILED


def test_operator_page_lists_pending_with_matched_rows(client, acme, globex, alice, bob, olivia):
    seed(acme, globex)
    file(client, alice, api_key="team-b")
    file(client, bob, request_ids="in-a-0")
    client.force_login(olivia)
    page = client.get(reverse("logs:deletions_operator")).content.decode()
    assert page.count('class="num matched">2<') == 1 and page.count('class="num matched">1<') == 1
    assert "Acme Corp" in page and "Globex" in page


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"reason": ""}, "This field is required."),
        ({"end": fmt(START - timedelta(hours=1))}, "The end must be after the start."),
        ({"end": fmt(NOW + timedelta(days=1))}, "The end cannot be in the future."),
        ({"start": "yesterday"}, "Enter a valid date/time."),
        ({"start": "2026-11-01T00:00\x00"}, "Null characters are not allowed."),
        ({"reason": "gdpr\x00"}, "Null characters are not allowed."),
        ({"api_key": "k\x00"}, "Null characters are not allowed."),
        ({"request_ids": "r1\nr\x002"}, "Null characters are not allowed."),
        ({"start": "2026-13-01T00:00"}, "Enter a valid date/time."),
        ({"request_ids": "\n".join(f"r{i}" for i in range(1001))}, "At most 1,000 request ids (1,001 given)."),
        ({"request_ids": "x" * 256}, "A request id has at most 255 characters."),
    ],
)
def test_bad_requests_answer_400_with_the_error(client, acme, alice, fields, error):
    response = file(client, alice, **fields)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not DeletionRequest.objects.exists()


def test_the_range_is_utc_whatever_the_viewer_zone(client, acme, alice):
    # 02:30 on 2026-03-08 does not exist in New York (DST gap); in UTC it does.
    client.cookies["meterlog_tz"] = "America%2FNew_York"
    assert file(client, alice, start="2026-03-08T02:30", end="2026-03-08T03:30").status_code == 302
    req = DeletionRequest.objects.get()
    assert (req.start, req.end) == (datetime(2026, 3, 8, 2, 30, tzinfo=UTC), datetime(2026, 3, 8, 3, 30, tzinfo=UTC))


def test_rollups_of_the_deleted_days_are_rebuilt(acme, alice, olivia):
    day = (NOW - timedelta(days=3)).replace(hour=12, minute=0, second=0)
    records = [
        {"request_id": f"r{i}", "timestamp": (day + timedelta(minutes=i)).isoformat(), "model": "m",
         "status": "success", "api_key": "team-a" if i < 3 else "team-b", "prompt_tokens": 10}
        for i in range(5)
    ]  # fmt: skip
    assert ingest_records(account=acme, records=records).accepted == 5

    def requests_that_day() -> int:
        rows = UsageDay.objects.filter(account=acme, day=day.date(), projection=Projection.FULL)
        return rows.aggregate(n=Sum("requests"))["n"] or 0

    assert requests_that_day() == 5
    req = services.deletion_file(
        account=acme,
        user=alice,
        reason="r",
        start=day - timedelta(hours=1),
        end=day + timedelta(hours=1),
        api_key="team-a",
    )
    services.deletion_approve(request=req, user=olivia)
    services.deletion_run(req.pk)
    assert requests_that_day() == 2
    rollups = DeletionEvent.objects.get(request=req, action="done").details["rollups"]
    assert rollups["first_day"] == rollups["last_day"] == day.date().isoformat()


def test_a_failed_run_is_recorded_and_not_run_again(acme, globex, alice, olivia):
    seed(acme, globex)
    req = services.deletion_file(account=acme, user=alice, reason="r", start=START, end=END, api_key="team-b")
    services.deletion_approve(request=req, user=olivia)
    registered = services._rollup_rebuild

    def broken_rebuild(account, first, last):
        raise RuntimeError("rollup rebuild unavailable")

    services.register_rollup_rebuild(broken_rebuild)
    try:
        with pytest.raises(RuntimeError):
            services.deletion_run(req.pk)
    finally:
        services.register_rollup_rebuild(registered)
    req.refresh_from_db()
    assert (req.status, req.rows_deleted) == (DeletionStatus.FAILED, 2)
    failed = DeletionEvent.objects.get(request=req, action="failed").details
    assert failed["rows_deleted"] == 2 and "rollup rebuild unavailable" in failed["error"]
    assert run_deletion_request(req.pk) is None
    assert actions(req) == ["filed", "approved", "started", "failed"]


def test_a_request_whose_worker_stopped_is_marked_failed(acme, globex, alice, olivia, settings):
    from logs.tasks import fail_stale_jobs

    seed(acme, globex)
    req = services.deletion_file(account=acme, user=alice, reason="r", start=START, end=END)
    services.deletion_approve(request=req, user=olivia)
    assert services._claim(req.pk) is not None  # claimed, then the worker died
    claimed = DeletionRequest.objects.get(pk=req.pk).updated_at
    later = claimed + timedelta(minutes=settings.METERLOG_JOB_STALE_MINUTES, seconds=1)
    assert services.fail_stale_deletions(now=later - timedelta(seconds=2)) == 0  # not stale yet
    assert services.fail_stale_deletions(now=later) == 1
    assert services.fail_stale_deletions(now=later) == 0
    assert fail_stale_jobs()["deletions"] == 0
    req.refresh_from_db()
    assert req.status == DeletionStatus.FAILED
    assert actions(req) == ["filed", "approved", "started", "failed"]
    assert run_deletion_request(req.pk) is None


def test_the_owner_page_costs_the_same_queries_for_1_or_5_requests(client, acme, alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(alice)
    client.get(reverse("logs:deletions"))  # the session's first request does more
    counts = []
    for n in (1, 5):
        while DeletionRequest.objects.filter(account=acme).count() < n:
            services.deletion_file(account=acme, user=alice, reason="r", start=START, end=END)
        with CaptureQueriesContext(connection) as queries:
            page = client.get(reverse("logs:deletions")).content.decode()
        assert page.count('<tr data-request="') == n
        counts.append(len(queries))
    assert counts[0] == counts[1]
