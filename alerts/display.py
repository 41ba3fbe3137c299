"""How a rule's figures read: values, thresholds and scope as people see them (pages, mail,
webhook text)."""

from decimal import Decimal

from alerts.models import RuleKind
from logs.templatetags.meterlog_format import format_usd


def format_value(kind: str, value) -> str:
    if value is None:
        return "–"
    number = Decimal(value)
    if kind == RuleKind.ERROR_RATE:
        return f"{number * 100:.2f} %"
    if kind == RuleKind.TOKEN_SPIKE:
        return f"{int(number):,} tokens"
    return format_usd(number)


def scope_label(*, model: str = "", api_key: str = "") -> str:
    parts = []
    if model:
        parts.append(f"model {model}")
    if api_key:
        parts.append(f"API key {api_key}")
    return ", ".join(parts) or "all requests"
