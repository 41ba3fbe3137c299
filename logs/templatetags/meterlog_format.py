"""Formatting for log data in templates: money, JSON and rates.

Costs are stored with 12 decimal places because a single small request costs fractions of
a cent; rounding them to cents on screen would show most rows as $0.00.
"""

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()

MAX_PLACES = 12


@register.filter
def usd(value, max_places=MAX_PLACES):
    """$ with the digits a value needs: at least 2 decimals, at most `max_places`.

    `None` renders as "" so templates decide how to show "unpriced"; never as $0.
    """
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(value)
        places = int(max_places)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    amount = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    exponent = amount.normalize().as_tuple().exponent
    needed = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    shown = min(max(needed, 2), places)
    return f"${amount:,.{shown}f}"


CELL_PLACES = 8


@register.filter
def usd_cell(value) -> str:
    """A cost in a table column: a fixed 8 decimals so the column lines up on the point
    (a 1,000-token request costs ~$0.0001-0.01); a value that needs more keeps them."""
    if value is None or value == "":
        return ""
    amount = Decimal(value)
    if amount == amount.quantize(Decimal(1).scaleb(-CELL_PLACES)):
        return f"${amount:,.{CELL_PLACES}f}"
    return usd(amount)


@register.filter
def pretty_json(value) -> str:
    """Indented JSON for <pre> blocks (escaped by the template like any string)."""
    if value is None:
        return ""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def percent(value, places=1) -> str:
    """0.0312 -> "3.1%"; None -> "–" (no rate without requests)."""
    if value is None:
        return "–"
    return f"{float(value) * 100:.{int(places)}f}%"


@register.filter
def per_mtok(value) -> str:
    """A unit price per million tokens, as sent by the price list (no trailing zeros)."""
    if value is None:
        return "–"
    return usd(value, 6)
