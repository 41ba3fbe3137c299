"""The one table of range presets and the filter vocabulary shared with analytics.usage."""

from datetime import UTC, datetime, timedelta

import pytest

from analytics.usage import FILTER_COLUMNS, FILTER_PARAMETERS, UsageFilters, UsageQuery
from logs.filters import RequestLogFilterSet
from logs.ranges import LOG_RANGES, PRESETS, subset, time_bounds

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_a_preset_is_a_window_ending_now():
    assert time_bounds("7d", now=NOW) == (NOW - timedelta(days=7), None)


def test_an_explicit_start_wins_over_the_preset_and_the_end_is_kept():
    start, end = NOW - timedelta(hours=3), NOW - timedelta(hours=1)
    assert time_bounds("30d", start, end, now=NOW) == (start, end)


def test_no_preset_and_no_start_is_an_open_start():
    assert time_bounds("", None, NOW, now=NOW) == (None, NOW)
    assert time_bounds(None) == (None, None)


def test_subsets_keep_the_table_order_and_refuse_unknown_keys():
    assert list(subset("30d", "24h")) == ["24h", "30d"]
    assert all(LOG_RANGES[key] is PRESETS[key] for key in LOG_RANGES)
    with pytest.raises(KeyError):
        subset("2w")


def test_the_log_filterset_offers_the_log_ranges():
    assert [key for key, _ in RequestLogFilterSet.base_filters["range"].extra["choices"]] == list(LOG_RANGES)


def test_usage_filters_from_cleaned_data():
    filters = UsageFilters.from_cleaned({"model": ["a", "b", "a"], "status": [], "ip": ["10.0.0.1"]})
    assert filters == UsageFilters(models=("a", "b"))
    assert filters.query_kwargs() == {"models": ("a", "b"), "api_keys": (), "statuses": (), "error_codes": ()}


def test_every_filter_attribute_is_a_usage_query_field():
    fields = UsageQuery.__dataclass_fields__
    assert set(FILTER_COLUMNS) <= set(fields)
    assert set(FILTER_PARAMETERS) <= set(RequestLogFilterSet.base_filters)
