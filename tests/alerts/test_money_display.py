"""Alert values and messages write money by the console's one rule (format_usd)."""

from decimal import Decimal

from alerts import rules
from alerts.display import format_value
from alerts.models import RuleKind


def test_values_on_pages_mails_and_webhook_text():
    assert format_value(RuleKind.BUDGET, Decimal("56.113914400000")) == "$56.11"
    assert format_value(RuleKind.COST_ANOMALY, Decimal("0.000482400000")) == "$0.0004824"
    assert format_value(RuleKind.BUDGET, Decimal("1500")) == "$1,500.00"
    assert format_value(RuleKind.BUDGET, None) == "–"
    assert format_value(RuleKind.ERROR_RATE, Decimal("0.0312")) == "3.12 %"


def test_budget_message():
    verdict = rules.budget({"amount": "1500", "period": "monthly"}, spent=Decimal("56.113914400000"))
    assert verdict.detail == "$56.11 spent this month of $1,500.00"
