"""The deletion requests' audit trail is append-only: an event is never edited or deleted and
a request is never deleted, in Django (model, queryset, admin) and on PostgreSQL by a trigger
that refuses raw SQL too (logs migration 0011). The log's own trigger still refuses a raw
DELETE outside logs.guard.allow_log_writes, also while a deletion request runs."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from logs.deletions import services
from logs.deletions.models import DeletionEvent, DeletionRequest
from logs.gate import request_logs
from tests.factories import make_log

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture
def done(acme, alice, olivia):
    make_log(acme, request_id="gone", timestamp=NOW - timedelta(days=3))
    make_log(acme, request_id="kept", timestamp=NOW - timedelta(days=1))
    req = services.deletion_file(
        account=acme, user=alice, reason="r", start=NOW - timedelta(days=4), end=NOW - timedelta(days=2)
    )
    services.deletion_approve(request=req, user=olivia, note="ok")
    services.deletion_run(req.pk)
    req.refresh_from_db()
    assert req.rows_deleted == 1
    return req


def test_events_refuse_edit_and_delete_in_django(done):
    event = DeletionEvent.objects.filter(request=done).first()
    event.details = {"rows_deleted": 0}
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        DeletionEvent.objects.filter(request=done).update(details={})
    with pytest.raises(PermissionError):
        DeletionEvent.objects.filter(request=done).delete()
    with pytest.raises(PermissionError):
        done.delete()
    with pytest.raises(PermissionError):
        DeletionRequest.objects.all().delete()
    assert DeletionEvent.objects.filter(request=done).count() == 4
    assert DeletionEvent.objects.get(request=done, action="done").details["rows_deleted"] == 1


def test_admin_is_read_only_without_delete(client, done, olivia):
    olivia.is_superuser = True
    olivia.save()
    client.force_login(olivia)
    for name, pk in (("deletionrequest", done.pk), ("deletionevent", done.events.first().pk)):
        assert client.get(reverse(f"admin:logs_{name}_changelist")).status_code == 200
        assert client.get(reverse(f"admin:logs_{name}_delete", args=[pk])).status_code == 403
        assert client.get(reverse(f"admin:logs_{name}_add")).status_code == 403
        page = client.get(reverse(f"admin:logs_{name}_change", args=[pk])).content.decode()
        assert 'name="_save"' not in page
        changelist = client.get(reverse(f"admin:logs_{name}_changelist")).content.decode()
        assert "delete_selected" not in changelist


def _refused(sql: str, params=()) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


@pytest.mark.postgres_only
def test_trigger_refuses_raw_update_and_delete_of_the_trail(done):
    rule = "the deletion audit trail is append-only"
    assert rule in _refused("UPDATE logs_deletionevent SET details = '{}' WHERE request_id = %s", [done.pk])
    assert rule in _refused("DELETE FROM logs_deletionevent WHERE request_id = %s", [done.pk])
    assert rule in _refused("DELETE FROM logs_deletionrequest WHERE id = %s", [done.pk])
    # Not even with the log writers' flag: the trail has no allowed writer.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('meterlog.allow_delete', 'deletion', true)")
        cursor.execute("DELETE FROM logs_deletionevent WHERE request_id = %s", [done.pk])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), max((details->>'rows_deleted')::int) FROM logs_deletionevent WHERE request_id = %s",
            [done.pk],
        )
        assert cursor.fetchone() == (4, 1)
        # The request's state changes are UPDATEs the service makes: allowed.
        cursor.execute("UPDATE logs_deletionrequest SET decision_note = decision_note WHERE id = %s", [done.pk])
        assert cursor.rowcount == 1


@pytest.mark.postgres_only
def test_log_trigger_still_refuses_a_raw_delete(done, acme):
    message = _refused("DELETE FROM logs_requestlog WHERE account_id = %s", [acme.pk])
    assert "nobody deletes or edits stored logs by hand" in message
    assert set(request_logs(account=acme).values_list("request_id", flat=True)) == {"kept"}
