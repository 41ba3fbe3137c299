"""Background work of the alerts app (thin: the pass is alerts.evaluation)."""

from celery import shared_task


@shared_task
def evaluate_alerts() -> dict:
    """One evaluation pass over every due rule (the beat entry "evaluate-alerts")."""
    from alerts.evaluation import evaluate_rules

    outcomes = evaluate_rules()
    events = [outcome.event for outcome in outcomes if outcome.event is not None]
    return {
        "rules": len(outcomes),
        "fired": sum(1 for event in events if event.state == "fired"),
        "recovered": sum(1 for event in events if event.state == "recovered"),
    }
