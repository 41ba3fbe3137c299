"""The beat entry's task runs one evaluation pass in a real Celery worker through Redis,
on committed rows of the test database, and the pass's figures are the rollups'."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from alerts.models import AlertEvent, AlertRule, RuleKind, RuleState
from tests.alerts.conftest import send
from tests.factories import make_account
from tests.logs.test_tasks import celery_worker

# The evaluation branch's own Redis database (the purge's worker tests use 15).
REDIS_URL = "redis://127.0.0.1:6379/5"


@pytest.mark.postgres_only
@pytest.mark.redis
def test_the_beat_task_evaluates_in_a_real_worker(transactional_db, tmp_path):
    from celery import Celery

    entry = settings.CELERY_BEAT_SCHEDULE["evaluate-alerts"]
    assert entry["schedule"] == settings.METERLOG_ALERT_EVALUATION_SECONDS == 60
    acme, globex = make_account("acme"), make_account("globex")
    now = datetime.now(UTC)
    send(acme, now - timedelta(minutes=1), 18, status="error")
    send(acme, now - timedelta(minutes=1), 6)
    send(globex, now - timedelta(minutes=1), 24)
    with celery_worker(tmp_path, redis_url=REDIS_URL) as (queue, log_path):
        client = Celery("meterlog-test-client", broker=REDIS_URL, backend=REDIS_URL)
        try:
            result = client.send_task(entry["task"], queue=queue)
            deadline = time.monotonic() + 90
            while not result.ready():
                if time.monotonic() > deadline:
                    pytest.fail("no result from the worker in 90 s; its log:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
            assert result.get(timeout=5) == {"rules": 6, "fired": 1, "recovered": 0}
        finally:
            client.close()
    [event] = AlertEvent.objects.all()
    assert (event.account_id, event.kind, event.state, event.value) == (acme.pk, "error_rate", "fired", 0.75)
    assert event.notified
    rule = AlertRule.objects.get(account=acme, kind=RuleKind.ERROR_RATE)
    assert rule.state == RuleState.FIRING and rule.last_notified_at is not None
    assert AlertRule.objects.get(account=globex, kind=RuleKind.ERROR_RATE).state == RuleState.OK
    assert "alert pass: 6 rules, 1 fired, 0 recovered" in log_path.read_text()
