"""Plotly figures for the analytics tables (analytics.reports.Table), built in Python and
drawn in the browser by static/js/analytics.js from a json_script block.

A figure is made from the same rows the page shows beside it and the CSV writes. Bars that
lead somewhere carry the URL in `customdata`; analytics.js follows it on click.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from analytics.plotting import go, plain
from analytics.report_tables import Table
from analytics.reports import ALERT_ERROR_RATE, ReportPeriod
from logs.templatetags.meterlog_format import UNPRICED, format_usd

ACCENT = "#2456c7"
SECOND = "#7fa3e8"
ERROR = "#b42318"
PREVIOUS = "#8a94a3"
MUTED = "#5e6976"
GRID = "#eef0f3"

# A small template of our own: the default "plotly" template adds ~10 kB to every figure.
_TEMPLATE = {
    "layout": {
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif", "size": 12,
                 "color": "#1c2128"},
        "colorway": [ACCENT, SECOND, "#17692e", "#8a5a00", ERROR, "#6b4fbb", "#0e7c86", MUTED],
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "xaxis": {"gridcolor": GRID, "linecolor": "#c9ced6", "zeroline": False, "automargin": True},
        "yaxis": {"gridcolor": GRID, "linecolor": "#c9ced6", "zeroline": False, "automargin": True},
        "hoverlabel": {"font": {"size": 12}},
    }
}  # fmt: skip


def _layout(**extra) -> dict:
    layout = {
        "template": _TEMPLATE,
        "height": 300,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "showlegend": False,
        "legend": {"orientation": "h", "y": 1.12, "x": 0},
        "hovermode": "closest",
    }
    layout.update(extra)
    return layout


def _numbers(values) -> list:
    return [float(v) if isinstance(v, Decimal) else v for v in values]


def _times(table: Table, key: str = "start") -> list[str]:
    # Local wall-clock times without an offset: plotly draws them as they read.
    return [moment.strftime("%Y-%m-%d %H:%M") for moment in table.values(key)]


def _previous_line(x, y, name="Previous period") -> go.Scatter:
    return go.Scatter(
        x=x, y=_numbers(y), name=name, mode="lines", connectgaps=False,
        line={"color": PREVIOUS, "dash": "dot", "width": 1.5}, opacity=0.6,
    )  # fmt: skip


def _money_texts(values) -> list[str]:
    # Plotly's own number formats cannot say "four significant digits below $1, cents
    # above": each point carries its text, formatted by the console's one rule.
    return [format_usd(value) for value in values]


def _unpriced_labels(values) -> dict:
    """An unpriced point is drawn as a zero bar labelled "unpriced", not as a blank."""
    return {
        "y": [0 if value is None else value for value in _numbers(values)],
        "text": _money_texts(values),
        "textposition": ["outside" if value is None else "none" for value in values],
        "texttemplate": [UNPRICED if value is None else "" for value in values],
    }


def cost_by_day(table: Table) -> go.Figure:
    fig = go.Figure(layout=_layout(yaxis={"tickprefix": "$"}))
    fig.add_bar(x=_times(table), marker_color=ACCENT, name="Cost", cliponaxis=False,
                textfont={"color": MUTED}, hovertemplate="%{x}<br>Cost: %{text}<extra></extra>",
                **_unpriced_labels(table.values("cost")))  # fmt: skip
    return fig


def _horizontal_bars(table: Table, label_key: str, value_key: str, *, money=False, percent=False, color=ACCENT):
    # The labels are the gateway's strings (model, API key, error code): plain text, not HTML.
    raw = table.values(value_key)
    labels, values = table.values(label_key), [0 if v is None else v for v in _numbers(raw)]
    axis = {"autorange": "reversed", "automargin": True, "type": "category"}
    value_axis = {"tickprefix": "$"} if money else ({"tickformat": ".0%"} if percent else {})
    fig = go.Figure(layout=_layout(height=max(160, 50 + 30 * len(labels)), yaxis=axis, xaxis=value_axis, bargap=0.3))
    fmt = "%{text}" if money else ("%{x:.1%}" if percent else "%{x:,}")
    fig.add_bar(
        x=values, y=[plain(label) for label in labels], orientation="h", marker_color=color,
        customdata=list(table.hrefs) or None, hovertemplate=f"%{{y}}: {fmt}<extra></extra>",
        text=_money_texts(raw) if money else None, texttemplate=fmt,
        # A zero-length bar hides an "auto" label: an unpriced one is written beside it.
        textposition=["outside" if money and v is None else "auto" for v in raw],
        insidetextfont={"color": "#ffffff"}, outsidetextfont={"color": MUTED}, cliponaxis=False,
    )  # fmt: skip
    return fig


def cost_by_model(table: Table) -> go.Figure:
    return _horizontal_bars(table, "model", "cost", money=True)


def cost_by_key(table: Table) -> go.Figure:
    return _horizontal_bars(table, "api_key", "cost", money=True)


def _over_time(table: Table, key: str, previous_key: str, *, money=False) -> go.Figure:
    x = _times(table)
    fig = go.Figure(layout=_layout(showlegend=True, yaxis={"tickprefix": "$"} if money else {}))
    hover = {"text": _money_texts(table.values(key)), "hovertemplate": "%{x}<br>%{text}"} if money else {}
    fig.add_scatter(x=x, y=_numbers(table.values(key)), mode="lines+markers", name="This period",
                    line={"color": ACCENT, "width": 2}, marker={"size": 5}, **hover)  # fmt: skip
    previous = _previous_line(x, table.values(previous_key))
    if money:
        previous.update(text=_money_texts(table.values(previous_key)), hovertemplate="%{x}<br>%{text}")
    fig.add_trace(previous)
    return fig


def requests_over_time(table: Table) -> go.Figure:
    return _over_time(table, "requests", "previous_requests")


def cost_over_time(table: Table) -> go.Figure:
    return _over_time(table, "cost", "previous_cost", money=True)


STACK_COLORS = [ACCENT, "#17692e", "#8a5a00", "#6b4fbb", "#0e7c86", ERROR, SECOND]


def cost_stacked(table: Table) -> go.Figure:
    """One bar trace per model / key column (top N, then "other"), stacked per bucket."""
    x = _times(table)
    fig = go.Figure(layout=_layout(showlegend=True, barmode="stack", yaxis={"tickprefix": "$"}))
    for index, column in enumerate(table.columns[1:]):
        values = table.values(column.key)
        color = MUTED if column.key == "other" else STACK_COLORS[index % len(STACK_COLORS)]
        fig.add_bar(x=x, y=_numbers(values), name=plain(column.label), marker_color=color,
                    text=_money_texts(values), textposition="none",
                    hovertemplate="%{x}<br>%{fullData.name}: %{text}<extra></extra>")  # fmt: skip
    return fig


def tokens_over_time(table: Table) -> go.Figure:
    x = _times(table)
    fig = go.Figure(layout=_layout(showlegend=True, barmode="stack"))
    fig.add_bar(x=x, y=table.values("prompt_tokens"), name="Prompt", marker_color=ACCENT)
    fig.add_bar(x=x, y=table.values("completion_tokens"), name="Completion", marker_color=SECOND)
    fig.add_trace(_previous_line(x, table.values("previous_total_tokens"), "Previous period (total)"))
    return fig


def weekday_hour(table: Table) -> go.Figure:
    hours = [column.label for column in table.columns[1:]]
    z = [row[1:] for row in table.rows]
    fig = go.Figure(layout=_layout(height=280, yaxis={"autorange": "reversed"}, xaxis={"type": "category"}))
    fig.add_heatmap(
        z=z, x=hours, y=table.values("weekday"), colorscale="Blues", xgap=1, ygap=1,
        hovertemplate="%{y} %{x}:00<br>%{z:,} requests<extra></extra>", colorbar={"thickness": 10},
    )  # fmt: skip
    return fig


def hour_of_day(table: Table) -> go.Figure:
    fig = go.Figure(layout=_layout(height=240, xaxis={"type": "category"}))
    fig.add_bar(x=table.values("hour"), y=table.values("requests"), marker_color=ACCENT,
                hovertemplate="%{x}: %{y:,} requests<extra></extra>")  # fmt: skip
    return fig


def error_rate(table: Table) -> go.Figure:
    # A bucket without requests has no rate: a gap in the line, not a misleading 0%.
    rates = [None if rate is None else float(rate) for rate in table.values("error_rate")]
    top = max([*(rate for rate in rates if rate is not None), ALERT_ERROR_RATE]) * 1.15
    fig = go.Figure(layout=_layout(yaxis={"tickformat": ".0%", "range": [0, top]}))
    fig.add_scatter(x=_times(table), y=rates, mode="lines+markers", name="Error rate", connectgaps=False,
                    line={"color": ERROR, "width": 2}, marker={"size": 5},
                    hovertemplate="%{x}<br>%{y:.1%}<extra></extra>")  # fmt: skip
    fig.add_hline(y=ALERT_ERROR_RATE, line_dash="dash", line_color=MUTED, line_width=1,
                  annotation_text=f"alert level {ALERT_ERROR_RATE:.0%}", annotation_position="top left",
                  annotation_font_color=MUTED)  # fmt: skip
    return fig


def errors_by_code(table: Table) -> go.Figure:
    return _horizontal_bars(table, "error_code", "errors", color=ERROR)


def errors_by_model(table: Table) -> go.Figure:
    return _horizontal_bars(table, "model", "error_rate", percent=True, color=ERROR)


FIGURES = {
    "cost_by_day": cost_by_day,
    "cost_by_model": cost_by_model,
    "cost_by_key": cost_by_key,
    "cost_over_time_by_model": cost_stacked,
    "cost_over_time_by_api_key": cost_stacked,
    "requests_over_time": requests_over_time,
    "tokens_over_time": tokens_over_time,
    "cost_over_time": cost_over_time,
    "weekday_hour": weekday_hour,
    "hour_of_day": hour_of_day,
    "error_rate": error_rate,
    "errors_by_code": errors_by_code,
    "errors_by_model": errors_by_model,
}


PARTIAL_PATTERN = "/"
PARTIAL_OPACITY = 0.5
TIME_KINDS = ("hour", "day", "week")


def _partial_index(table: Table, now: datetime) -> int | None:
    """The row of the bucket holding `now` (the last one starting at or before it)."""
    if not table.columns or table.columns[0].kind not in TIME_KINDS:
        return None
    starts = table.values(table.columns[0].key)
    before = [index for index, start in enumerate(starts) if start <= now]
    return before[-1] if before else None


def mark_partial(fig: go.Figure, table: Table, now: datetime) -> None:
    """The bucket still filling drawn lighter and hatched, with a "so far" note, so a half
    day does not read as a drop. The previous period's line is whole and left alone."""
    at = _partial_index(table, now)
    if at is None:
        return
    count = len(table.rows)
    for trace in fig.data:
        if (trace.name or "").startswith("Previous"):
            continue
        if trace.type == "bar":
            trace.marker.opacity = [PARTIAL_OPACITY if i == at else 1 for i in range(count)]
            trace.marker.pattern = {
                "shape": ["" if i != at else PARTIAL_PATTERN for i in range(count)],
                "solidity": 0.3,
            }
        elif trace.type == "scatter":
            trace.marker.symbol = ["circle-open" if i == at else "circle" for i in range(count)]
    fig.add_annotation(
        x=_times(table, table.columns[0].key)[at], y=1, yref="paper", yanchor="bottom", text="so far",
        showarrow=False, font={"color": MUTED, "size": 11}, name="partial",
    )  # fmt: skip
    fig.update_layout(margin={"t": 24}, meta={"partial_index": at})


def figure_json(table: Table, *, period: ReportPeriod | None = None) -> dict | None:
    """The figure of a table as plain JSON data (for json_script), or None for a table
    shown without a chart. With a period that ends after now, its current bucket is marked."""
    build = FIGURES.get(table.name)
    if build is None or not table.chart:
        return None
    fig = build(table)
    if period is not None and period.partial_from is not None:
        mark_partial(fig, table, period.partial_from.astimezone(period.zone))
    return json.loads(fig.to_json())
