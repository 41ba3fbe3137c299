"""The one money rule (logs.templatetags.meterlog_format.format_usd) and its full-precision
twin for hover, API and exports."""

from decimal import Decimal

import pytest
from django.template import Context, Template

from logs.templatetags.meterlog_format import csv_usd, exact_usd, format_usd

CASES = [
    # value, shown, exact (hover, API), chart CSV (exact, a plain number)
    (Decimal("0.000482400000"), "$0.0004824", "$0.0004824", "0.0004824"),
    (Decimal("40.223342000000"), "$40.22", "$40.223342", "40.223342"),
    (Decimal("15.865790000000"), "$15.87", "$15.86579", "15.86579"),
    (Decimal("0.024300000000"), "$0.0243", "$0.0243", "0.0243"),
    (Decimal("0.000000000000"), "$0.00", "$0.00", "0.00"),
    (Decimal("0"), "$0.00", "$0.00", "0.00"),
    (Decimal("1"), "$1.00", "$1.00", "1.00"),
    (Decimal("0.5"), "$0.50", "$0.50", "0.50"),
    (Decimal("0.123456"), "$0.1235", "$0.123456", "0.123456"),
    (Decimal("0.99996"), "$1.00", "$0.99996", "0.99996"),  # rounds up to a dollar
    (Decimal("0.999949"), "$0.9999", "$0.999949", "0.999949"),
    (Decimal("0.000000000001"), "$0.000000000001", "$0.000000000001", "0.000000000001"),
    (Decimal("0.000000123456789"), "$0.0000001235", "$0.000000123456789", "0.000000123456789"),
    (Decimal("999.995"), "$1,000.00", "$999.995", "999.995"),
    (Decimal("1234.5"), "$1,234.50", "$1,234.50", "1234.50"),
    (Decimal("1234567.891234"), "$1,234,567.89", "$1,234,567.891234", "1234567.891234"),
    (Decimal("-0.00012345"), "-$0.0001235", "-$0.00012345", "-0.00012345"),
    (Decimal("-15.865"), "-$15.87", "-$15.865", "-15.865"),
    (Decimal("-1234.5"), "-$1,234.50", "-$1,234.50", "-1234.50"),
    ("0.0004824", "$0.0004824", "$0.0004824", "0.0004824"),  # strings and floats alike
    (0.0243, "$0.0243", "$0.0243", "0.0243"),
    (12, "$12.00", "$12.00", "12.00"),
    (None, "unpriced", "unpriced", ""),
    ("", "unpriced", "unpriced", ""),
]


@pytest.mark.parametrize(("value", "shown", "exact", "csv"), CASES)
def test_money_rule(value, shown, exact, csv):
    assert format_usd(value) == shown
    assert exact_usd(value) == exact
    assert csv_usd(value) == csv


def test_none_text_is_the_callers():
    assert format_usd(None, none="—") == "—"


def test_money_filter_puts_every_digit_on_hover():
    template = Template("{% load meterlog_format %}{{ a|money }} {{ b|money }} {{ c|usd }}")
    html = template.render(Context({"a": Decimal("40.223342000000"), "b": None, "c": Decimal("0.000482400000")}))
    assert html == (
        '<span class="money" title="$40.223342">$40.22</span> '
        '<span class="badge badge-muted">unpriced</span> $0.0004824'
    )


def test_unit_prices_keep_the_price_lists_digits():
    template = Template("{% load meterlog_format %}{{ a|per_mtok }} {{ b|per_mtok }} {{ c|per_mtok }}")
    html = template.render(Context({"a": Decimal("2.5000000000"), "b": Decimal("0.0750000000"), "c": None}))
    assert html == "$2.50 $0.075 –"
