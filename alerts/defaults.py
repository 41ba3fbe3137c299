"""The rules every account starts with: a cost anomaly (mean + 2σ of 14 days), an error rate
above 10% over an hour, and a single request above 100,000 tokens. Made for a new account
(alerts.apps connects `account_created`) and, by migration 0002, for the accounts that
existed before alerts. METERLOG_ALERT_DEFAULT_RULES=0 turns the new-account rules off."""

from collections.abc import Iterable

from django.conf import settings

from alerts.models import AlertRule, RuleKind
from alerts.rules import DEFAULTS

DEFAULT_RULES = (
    (RuleKind.COST_ANOMALY, "Cost anomaly (mean + 2σ of 14 days)"),
    (RuleKind.ERROR_RATE, "Error rate above 10% in an hour"),
    (RuleKind.TOKEN_SPIKE, "Abnormally high single request tokens"),
)


def default_rules(account_id: int, rule_model=AlertRule) -> list:
    return [
        rule_model(account_id=account_id, kind=kind, name=name, params=dict(DEFAULTS[kind]))
        for kind, name in DEFAULT_RULES
    ]


def create_default_rules(account_ids: Iterable[int], rule_model=AlertRule) -> int:
    """The default rules of accounts that have no rule yet (safe to run twice)."""
    account_ids = set(account_ids)
    have = set(rule_model.objects.filter(account_id__in=account_ids).values_list("account_id", flat=True))
    rules = [rule for account_id in sorted(account_ids - have) for rule in default_rules(account_id, rule_model)]
    rule_model.objects.bulk_create(rules)
    return len(rules)


def account_created(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """post_save of Account: a new account gets the default rules (not when loading fixtures)."""
    if created and not raw and settings.METERLOG_ALERT_DEFAULT_RULES:
        create_default_rules([instance.pk])
