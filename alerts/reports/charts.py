"""The plotly figures of the "Generate report" page: analytics.figures' own where one fits
the report's tables (cost by day, error rate, cost by model / key, errors by code), and the
requests by day, which the analytics page draws against the previous period instead."""

import json

from alerts.reports.builder import UsageReport
from analytics import figures
from analytics.plotting import go
from analytics.report_tables import Table

# Each chart: the figure's name, the report table it draws, its title (None: the table's),
# and whether it shows cost (left out when nothing in the range was priced: an empty axis).
CHARTS = (
    ("cost_by_day", "cost_by_day", "Cost by day", True),
    ("requests_by_day", "cost_by_day", "Requests by day", False),
    ("error_rate", "cost_by_day", "Error rate by day", False),
    ("cost_by_model", "cost_by_model", None, True),
    ("cost_by_key", "cost_by_key", None, True),
    ("errors_by_code", "errors_by_code", None, False),
)


def requests_by_day(table: Table) -> go.Figure:
    layout = {
        "height": 260,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "showlegend": False,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif", "size": 12},
        "xaxis": {"gridcolor": figures.GRID, "automargin": True},
        "yaxis": {"gridcolor": figures.GRID, "automargin": True, "rangemode": "tozero"},
    }
    fig = go.Figure(layout=layout)
    fig.add_bar(
        x=[moment.strftime("%Y-%m-%d") for moment in table.values("start")], y=table.values("requests"),
        marker_color=figures.ACCENT, hovertemplate="%{x}<br>%{y:,} requests<extra></extra>",
    )  # fmt: skip
    return fig


def _figure(name: str, table: Table):
    return requests_by_day(table) if name == "requests_by_day" else figures.FIGURES[name](table)


def page_charts(report: UsageReport) -> list[dict]:
    """[{name, title, figure (plain JSON for json_script), figure_id}] for the report."""
    if report.empty:
        return []
    priced = bool(report.total.cost)
    charts = []
    for name, table_name, title, money in CHARTS:
        table = report.tables[table_name]
        if not table.rows or (money and not priced):
            continue
        figure = json.loads(_figure(name, table).to_json())
        charts.append({"name": name, "title": title or table.title, "figure": figure, "figure_id": f"figure-{name}"})
    return charts
