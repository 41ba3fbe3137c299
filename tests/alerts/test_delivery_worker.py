"""A delivery sent by a real Celery worker through Redis: the worker knows the task (it is
not in a tasks.py: CELERY_IMPORTS names it) and retries after a real, jittered backoff."""

import time

import pytest

from alerts.models import Delivery
from tests.alerts.conftest import make_event, make_rule
from tests.logs.test_tasks import TEST_REDIS_URL, celery_worker


@pytest.mark.postgres_only
@pytest.mark.redis
def test_a_worker_retries_a_webhook_until_it_is_accepted(transactional_db, acme, receiver, tmp_path, monkeypatch):
    """transactional_db: the worker is another process and sees only committed rows."""
    from celery import Celery

    monkeypatch.setenv("METERLOG_ALERT_RETRY_BACKOFF_SECONDS", "1")
    monkeypatch.setenv("METERLOG_ALERT_RETRY_BACKOFF_MAX_SECONDS", "2")
    monkeypatch.setenv("METERLOG_WEBHOOK_ALLOW_PRIVATE", "1")
    server = receiver([503, 503, 200])
    rule = make_rule(acme, webhook_url=server.url, email_enabled=False)
    event = make_event(rule)
    delivery = Delivery.objects.create(account=acme, rule=rule, event=event, channel="webhook", target=server.url)
    client = Celery("meterlog-test-client", broker=TEST_REDIS_URL, backend=TEST_REDIS_URL)
    try:
        with celery_worker(tmp_path) as (queue, log_path):
            client.send_task("alerts.delivery_tasks.send_delivery", args=[delivery.pk], queue=queue)
            deadline = time.monotonic() + 90
            while Delivery.objects.get(pk=delivery.pk).status == "pending":
                if time.monotonic() > deadline:
                    log = log_path.read_text()[-3000:]
                    pytest.fail(f"the delivery is still pending after 90 s; worker log:\n{log}")
                time.sleep(0.2)
    finally:
        client.close()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert len(server.requests) == 3
    log = log_path.read_text()
    assert log.count("Retry in") == 2  # each failure queued one retry with its countdown
