"""Exactly once under two concurrent senders, on PostgreSQL: two threads, each with its own
connection, claim and send the same subscription's period at the same moment."""

import threading
from datetime import date, datetime

import pytest
from django.db import connection

from alerts.models import ReportSubscription, SentReport
from alerts.reports import sending
from tests.alerts.reports.conftest import BERLIN

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

DUE = datetime(2026, 12, 1, 8, 5, tzinfo=BERLIN)


def _in_threads(target, n=2) -> list:
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(index):
        try:
            barrier.wait(timeout=10)
            results[index] = target()
        except Exception as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


def test_two_senders_at_once_send_one_mail(report_data, alice, smtp_server):
    ReportSubscription.objects.create(account=report_data, user=alice, frequency="monthly", hour=8)
    summaries = _in_threads(lambda: sending.send_due_reports(now=DUE))
    assert sorted(len(summary.sent) for summary in summaries) == [0, 1]
    assert len(smtp_server.envelopes) == 1
    assert SentReport.objects.filter(period_start=date(2026, 11, 1)).count() == 1
    assert SentReport.objects.get().sent_at is not None


def test_two_claims_of_one_period_at_once_give_one_row(report_data, alice):
    subscription = ReportSubscription.objects.create(account=report_data, user=alice, frequency="monthly", hour=8)
    report = sending.build_for_subscription(subscription, date(2026, 11, 1), date(2026, 11, 30))
    for _round in range(3):
        claims = _in_threads(lambda: sending.claim_period(subscription, report), n=4)
        assert len([claim for claim in claims if claim is not None]) == (1 if _round == 0 else 0)
    assert SentReport.objects.count() == 1


def test_two_workers_retrying_one_failed_row_send_it_once(report_data, alice, smtp_server):
    subscription = ReportSubscription.objects.create(account=report_data, user=alice, frequency="monthly", hour=8)
    report = sending.build_for_subscription(subscription, date(2026, 11, 1), date(2026, 11, 30))
    sent = sending.claim_period(subscription, report)
    results = _in_threads(lambda: sending.deliver(sent.pk, now=DUE), n=3)
    assert sorted(results, key=str) == [None, None, True]
    assert len(smtp_server.envelopes) == 1
