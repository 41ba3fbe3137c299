"""The default rules (as alerts.defaults made them then) for the accounts that existed before
alerts; accounts made later get them when they are made."""

from django.db import migrations

RULES = (
    (
        "cost_anomaly",
        "Cost anomaly (mean + 2σ of 14 days)",
        {"k": 2.0, "days": 14, "min_history_days": 7, "floor": 0.0},
    ),
    ("error_rate", "Error rate above 10% in an hour", {"threshold": 0.10, "window_minutes": 60, "min_requests": 20}),
    (
        "token_spike",
        "Abnormally high single request tokens",
        {"mode": "absolute", "tokens": 100_000, "factor": 3.0, "days": 7},
    ),
)


def seed(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    have = set(AlertRule.objects.values_list("account_id", flat=True))
    accounts = apps.get_model("console", "Account").objects.exclude(pk__in=have).values_list("pk", flat=True)
    AlertRule.objects.bulk_create(
        AlertRule(account_id=account_id, kind=kind, name=name, params=dict(params))
        for account_id in accounts
        for kind, name, params in RULES
    )


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
