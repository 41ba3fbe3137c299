"""The Celery task that sends one alert delivery, with retries.

Kept apart from alerts/tasks.py (the evaluation's); CELERY_IMPORTS names this module so a
worker registers it. Retries back off exponentially with full jitter
(METERLOG_ALERT_RETRY_BACKOFF_SECONDS × 2^n, at most METERLOG_ALERT_RETRY_BACKOFF_MAX_SECONDS)
up to METERLOG_ALERT_DELIVERY_TRIES tries in all.
"""

from celery import shared_task
from django.conf import settings

from alerts.notifications import DeliveryFailed, attempt_delivery


@shared_task(
    bind=True,
    autoretry_for=(DeliveryFailed,),
    retry_backoff=settings.METERLOG_ALERT_RETRY_BACKOFF_SECONDS,
    retry_backoff_max=settings.METERLOG_ALERT_RETRY_BACKOFF_MAX_SECONDS,
    retry_jitter=True,
    max_retries=max(settings.METERLOG_ALERT_DELIVERY_TRIES - 1, 0),
    acks_late=True,
)
def send_delivery(self, delivery_id: int) -> str | None:
    delivery = attempt_delivery(delivery_id, final=self.request.retries >= self.max_retries)
    return None if delivery is None else delivery.status
