"""The report as a PDF (fpdf2: pure Python, no browser): the summary, bar charts drawn with
fpdf2's rectangles, the tables and the alerts, from the same UsageReport as the page and mail.

The PDF uses the core Helvetica font, which holds Latin-1 only: other characters of a model
or key name are written as "?" rather than failing the download.
"""

from datetime import datetime
from decimal import Decimal

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from alerts.reports.builder import UsageReport
from alerts.reports.email import report_context
from analytics.report_tables import Table
from logs.templatetags.meterlog_format import format_usd

ACCENT = (36, 86, 199)
ERROR = (180, 35, 24)
MUTED = (94, 105, 118)
GRID = (221, 225, 230)
TEXT = (28, 33, 40)
LINE_H = 5.2
_REPLACEMENTS = {"–": "-", "—": "-", "…": "...", "’": "'", "“": '"', "”": '"', "→": "->"}


def latin1(text) -> str:
    text = str(text)
    for char, plain in _REPLACEMENTS.items():
        text = text.replace(char, plain)
    return text.encode("latin-1", "replace").decode("latin-1")


class _ReportPDF(FPDF):
    def __init__(self, footer_text: str):
        super().__init__(format="A4")
        self.footer_text = latin1(footer_text)
        self.set_auto_page_break(auto=True, margin=14)
        self.set_margins(14, 14, 14)

    def footer(self):
        self.set_y(-10)
        self.set_font("Helvetica", size=7.5)
        self.set_text_color(*MUTED)
        self.cell(0, 4, f"{self.footer_text} - page {self.page_no()}", align="C")

    @property
    def content_width(self) -> float:
        return self.w - self.l_margin - self.r_margin

    def heading(self, text: str, size: float = 11.5):
        if self.get_y() > self.h - 40:
            self.add_page()
        self.ln(2)
        self.set_font("Helvetica", "B", size)
        self.set_text_color(*TEXT)
        self.cell(0, 7, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def text_line(self, text: str, *, size: float = 9, color=TEXT, bold: bool = False):
        self.set_font("Helvetica", "B" if bold else "", size)
        self.set_text_color(*color)
        self.multi_cell(0, LINE_H, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _number(value) -> float:
    return float(value) if isinstance(value, Decimal | int | float) else 0.0


def _day_bars(pdf: _ReportPDF, table: Table, key: str, title: str, *, color=ACCENT, money=False):
    """Vertical bars, one per day, with the largest value and the first and last day named."""
    values = [_number(v) for v in table.values(key)]
    days = table.values("start")
    if not values:
        return
    pdf.heading(title, 10)
    if not any(values):
        pdf.text_line("None in this period." if key != "cost" else "No priced requests in this period.", color=MUTED)
        return
    height, width = 38.0, pdf.content_width
    if pdf.get_y() + height + 10 > pdf.h - 14:
        pdf.add_page()
    top, left = pdf.get_y() + 2, pdf.l_margin + 16
    plot_w = width - 16
    peak = max(values) or 1.0
    pdf.set_draw_color(*GRID)
    pdf.line(left, top + height, left + plot_w, top + height)
    pdf.line(left, top, left + plot_w, top)
    pdf.set_font("Helvetica", size=7)
    pdf.set_text_color(*MUTED)
    pdf.set_xy(pdf.l_margin, top - 1.5)
    pdf.cell(15, 3, _short(max(values), money), align="R")
    pdf.set_xy(pdf.l_margin, top + height - 1.5)
    pdf.cell(15, 3, "0", align="R")
    slot = plot_w / len(values)
    pdf.set_fill_color(*color)
    for index, value in enumerate(values):
        bar = height * value / peak
        if bar > 0:
            pdf.rect(left + index * slot + slot * 0.15, top + height - bar, max(slot * 0.7, 0.3), bar, style="F")
    pdf.set_xy(left, top + height + 1)
    pdf.cell(plot_w / 2, 3.5, _day(days[0]))
    pdf.cell(plot_w / 2, 3.5, _day(days[-1]), align="R")
    pdf.set_y(top + height + 6)


def _day(value) -> str:
    return value.strftime("%a %Y-%m-%d") if isinstance(value, datetime) else str(value)


def _short(value: float, money: bool) -> str:
    return format_usd(value) if money else f"{value:,.0f}"


def _table(pdf: _ReportPDF, table: Table, *, bar_key: str | None = None, limit: int | None = None):
    """A table with aligned columns; with `bar_key`, a bar of that share under the first cell."""
    columns = table.columns
    rows = table.display_rows()[:limit]
    if not rows:
        pdf.text_line("Nothing in this period.", color=MUTED)
        return
    keys = [column.key for column in columns]
    share_at = keys.index(bar_key) if bar_key in keys else None
    width = pdf.content_width
    first = width * (0.34 if len(columns) > 4 else 0.45)
    rest = (width - first) / max(len(columns) - 1, 1)
    widths = [first] + [rest] * (len(columns) - 1)
    pdf.set_font("Helvetica", "B", 8)
    pdf.set_text_color(*MUTED)
    for column, w in zip(columns, widths, strict=True):
        pdf.cell(w, LINE_H, latin1(column.label), align="L" if column.kind == "text" else "R")
    pdf.ln(LINE_H)
    pdf.set_draw_color(*GRID)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.set_font("Helvetica", size=8)
    pdf.set_text_color(*TEXT)
    for values, row in zip(table.rows, rows, strict=False):
        if pdf.get_y() > pdf.h - 22:
            pdf.add_page()
        y = pdf.get_y()
        for cell, w in zip(row, widths, strict=True):
            text = latin1(cell.text)
            while pdf.get_string_width(text) > w - 1 and len(text) > 4:
                text = text[:-2] + "~"
            pdf.cell(w, LINE_H, text, align="R" if cell.numeric else "L")
        pdf.ln(LINE_H)
        share = values[share_at] if share_at is not None else None
        if share:
            pdf.set_fill_color(*ACCENT)
            pdf.rect(pdf.l_margin, y + LINE_H - 0.9, max((first - 2) * float(share), 0.4), 0.8, style="F")


def report_pdf(report: UsageReport) -> bytes:
    context = report_context(report)
    account = report.account
    pdf = _ReportPDF(f"Meterlog - {account.name} - {report.period.label}")
    pdf.set_title(latin1(f"Usage report {account.name} {report.period.label}"))
    pdf.set_author("Meterlog")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.set_text_color(*TEXT)
    pdf.cell(0, 9, latin1(f"Usage report - {account.name}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.text_line(f"{report.period.label} ({context['zone']}) - {context['scope_label']}", size=9.5, color=MUTED)
    pdf.text_line(
        f"Compared with {report.period.previous_start.astimezone(report.period.zone):%Y-%m-%d} - "
        f"{report.previous_last_day:%Y-%m-%d}",
        size=8.5,
        color=MUTED,
    )
    if report.empty:
        pdf.heading("No requests in this period.")
    else:
        pdf.heading("Summary")
        for line in context["summary"]:
            pdf.set_font("Helvetica", size=9)
            pdf.set_text_color(*MUTED)
            pdf.cell(34, LINE_H, latin1(line.label))
            pdf.set_font("Helvetica", "B", 9)
            pdf.set_text_color(*TEXT)
            pdf.cell(40, LINE_H, latin1(line.value))
            pdf.set_font("Helvetica", size=8.5)
            pdf.set_text_color(*MUTED)
            pdf.cell(0, LINE_H, latin1(line.change), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if report.peak_hour:
            peak = report.peak_hour.total
            pdf.set_font("Helvetica", size=9)
            pdf.set_text_color(*MUTED)
            pdf.cell(34, LINE_H, "Peak hour")
            pdf.set_text_color(*TEXT)
            pdf.cell(
                0, LINE_H, latin1(f"{report.peak_hour_local:%a %Y-%m-%d %H:%M} - {peak.requests:,} requests, "
                                  f"{peak.total_tokens:,} tokens"),
                new_x=XPos.LMARGIN, new_y=YPos.NEXT,
            )  # fmt: skip
        daily = report.tables["cost_by_day"]
        _day_bars(pdf, daily, "cost", "Cost by day", money=True)
        _day_bars(pdf, daily, "requests", "Requests by day")
        _day_bars(pdf, daily, "errors", "Errors by day", color=ERROR)
        for name in ("cost_by_model", "cost_by_key", "errors_by_code"):
            table = report.tables[name]
            pdf.heading(table.title)
            _table(pdf, table, bar_key="share")
    pdf.heading(f"Alerts fired ({report.alerts_count})")
    for event in report.alerts:
        when = event.created_at.astimezone(report.period.zone)
        scope = " - ".join(part for part in (event.model, event.api_key) if part)
        pdf.text_line(
            f"{when:%Y-%m-%d %H:%M}  {event.get_kind_display()}{' - ' + scope if scope else ''}"
            f"{': ' + event.message if event.message else ''}",
            size=8.5,
        )
    if not report.alerts:
        pdf.text_line("None.", color=MUTED)
    if not report.empty:
        pdf.heading("Daily breakdown")
        _table(pdf, report.tables["cost_by_day"])
    return bytes(pdf.output())
