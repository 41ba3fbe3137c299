"""Formatting for log data in templates: money, JSON and rates.

Money has one rule everywhere a person reads it (pages, chart tables and CSVs, mails):
`format_usd`. Costs are stored with 12 decimal places because a single small request costs
fractions of a cent, so below $1 the rule keeps significant digits rather than cents;
`exact_usd` is the stored value itself, shown on hover (`money`), in the API and exports.
"""

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils.html import format_html

register = template.Library()

UNPRICED = "unpriced"
SIGNIFICANT = 4  # below $1: $0.0004824, $0.0243, $0.1235


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return None
    return amount if amount.is_finite() else None


def _plain_usd(amount: Decimal) -> str:
    """The rule without the "$" and separators' sign handling: a magnitude as text."""
    if amount >= 1:
        return f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"
    if amount == 0:
        return "0.00"
    # Four significant digits: the place of the first non-zero digit decides the quantum.
    places = SIGNIFICANT - 1 - amount.adjusted()
    rounded = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if rounded >= 1:  # $0.99996 rounds up to a dollar: shown as one.
        return "1.00"
    text = f"{rounded:f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction:0<2}"  # at least cents: $0.50, not $0.5


def format_usd(value, *, none: str = UNPRICED, symbol: str = "$") -> str:
    """Money as people read it: 2 decimals from $1 (with thousands separators), four
    significant digits below, no zeros past the last significant digit; `none` for a
    missing cost (an unpriced request is said, never shown as $0)."""
    amount = _decimal(value)
    if amount is None:
        return none if value is None or value == "" else str(value)
    sign = "-" if amount < 0 and _plain_usd(-amount) != "0.00" else ""
    return f"{sign}{symbol}{_plain_usd(abs(amount))}"


def csv_usd(value) -> str:
    """A cost in a chart's CSV: a plain number a spreadsheet reads (no "$", no separators),
    every stored digit but none of the 12 places' padding zeros; blank when unpriced. Not
    rounded like the page: the file is for adding up, and rounded parts would not add up."""
    return exact_usd(value, none="").replace("$", "").replace(",", "")


def exact_usd(value, *, none: str = UNPRICED) -> str:
    """Every stored digit, without the zeros that only pad the 12 places."""
    amount = _decimal(value)
    if amount is None:
        return none
    whole, _, fraction = f"{abs(amount):,f}".partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{'-' if amount < 0 else ''}${whole}.{fraction}"


@register.filter
def usd(value) -> str:
    """A cost as text ("$15.87", "$0.0004824", "unpriced")."""
    return format_usd(value)


@register.filter
def usd_exact(value) -> str:
    return exact_usd(value)


@register.filter
def money(value):
    """A cost in HTML: the rounded amount, every digit on hover; "unpriced" as a badge."""
    if _decimal(value) is None:
        return format_html('<span class="badge badge-muted">{}</span>', UNPRICED)
    return format_html('<span class="money" title="{}">{}</span>', exact_usd(value), format_usd(value))


# Table columns used to pad to 8 places to line up on the point; the one rule now applies.
usd_cell = register.filter("usd_cell", money)


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
    """A unit price per million tokens, exactly as the price list has it ($2.50, $0.075):
    a price is a rate to compute with, not an amount spent, so it is not rounded."""
    return exact_usd(value, none="–")
