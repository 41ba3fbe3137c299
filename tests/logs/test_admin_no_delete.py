"""The admin deletes no log, not even for a superuser: the request log has no delete (page,
"delete selected" action), and an account that has logs cannot be deleted (its logs would
have to go with it: on_delete=PROTECT), refused with a message before Django's collector
would load the logs to list them."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.models import Account
from logs.admin import RequestLogAdmin
from logs.models import RequestLog
from tests.factories import make_account, make_log

REFUSAL = "still has request logs: they are kept for their retention period"


@pytest.fixture
def superuser(admin_user):
    assert admin_user.is_superuser
    return admin_user


@pytest.mark.django_db
def test_no_delete_permission_or_action_on_request_logs_for_a_superuser(rf, superuser, acme):
    from django.contrib import admin

    row = make_log(acme, request_id="kept")
    request = rf.get("/admin/logs/requestlog/")
    request.user = superuser
    model_admin = RequestLogAdmin(RequestLog, admin.site)
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.has_delete_permission(request, row) is False
    assert "delete_selected" not in model_admin.get_actions(request)


@pytest.mark.django_db
def test_the_changelist_offers_no_delete_action(admin_client, acme):
    make_log(acme, request_id="kept")
    html = admin_client.get("/admin/logs/requestlog/?window=all").content.decode()  # any time
    assert "kept" in html and "delete_selected" not in html


@pytest.mark.django_db
def test_an_account_with_logs_cannot_be_deleted_from_its_page(admin_client, acme):
    make_log(acme, request_id="kept")
    url = f"/admin/console/account/{acme.pk}/delete/"
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert REFUSAL in html and "Acme" in html
    assert 'name="post"' not in html  # the page offers no "Yes, I'm sure" form
    # One EXISTS on the log, not a read of its rows.
    log_reads = [q["sql"] for q in queries.captured_queries if "logs_requestlog" in q["sql"]]
    assert len(log_reads) == 1 and re.search(r"LIMIT 1", log_reads[0])
    posted = admin_client.post(url, {"post": "yes"})
    assert posted.status_code == 200 and REFUSAL in posted.content.decode()
    assert Account.objects.filter(pk=acme.pk).exists()
    assert RequestLog.objects.filter(account=acme).count() == 1


@pytest.mark.django_db
def test_delete_selected_refuses_when_any_account_has_logs(admin_client, acme):
    empty = make_account("empty")
    make_log(acme, request_id="kept")
    both = {"action": "delete_selected", "_selected_action": [acme.pk, empty.pk], "post": "yes"}
    response = admin_client.post("/admin/console/account/", both)
    assert response.status_code == 200 and REFUSAL in response.content.decode()
    assert set(Account.objects.values_list("slug", flat=True)) == {"acme", "empty"}
    assert RequestLog.objects.count() == 1


@pytest.mark.django_db
def test_an_account_without_logs_can_still_be_deleted(admin_client):
    empty = make_account("empty")
    response = admin_client.post(f"/admin/console/account/{empty.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Account.objects.filter(slug="empty").exists()
