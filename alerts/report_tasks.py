"""Celery tasks of the report mails (the beat entry "send-due-reports" in console/settings.py)."""

import logging

from celery import shared_task
from django.utils import timezone

from alerts.reports import sending

log = logging.getLogger(__name__)


@shared_task
def send_due_reports() -> dict:
    """Send every subscription's due report once (and retry the failed ones); safe to run
    twice or on two workers at once: each period is claimed before it is sent."""
    summary = sending.send_due_reports(now=timezone.now())
    if summary.sent or summary.failed:
        log.info("report mails: %s sent, %s failed", len(summary.sent), len(summary.failed))
    return {"sent": len(summary.sent), "failed": len(summary.failed), "skipped": len(summary.skipped)}
