"""How a rule's figures read: values, thresholds and scope as people see them (pages, mail,
webhook text)."""

from decimal import Decimal

from alerts.models import RuleKind


def format_value(kind: str, value) -> str:
    if value is None:
        return "–"
    number = Decimal(value)
    if kind == RuleKind.ERROR_RATE:
        return f"{number * 100:.2f} %"
    if kind == RuleKind.TOKEN_SPIKE:
        return f"{int(number):,} tokens"
    # Cents for dollar amounts; small ones (a cheap model's day) keep four places.
    return f"${number:,.4f}" if abs(number) < 1 else f"${number:,.2f}"


def scope_label(*, model: str = "", api_key: str = "") -> str:
    parts = []
    if model:
        parts.append(f"model {model}")
    if api_key:
        parts.append(f"API key {api_key}")
    return ", ".join(parts) or "all requests"
