"""The reports pages: subscriptions (members only, one's own, the account's own choices),
sent reports as they were sent, "Generate report" (page, CSV, PDF read back with pypdf)."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from alerts.models import ReportSubscription, SentReport
from tests.alerts.reports.conftest import expected

pytestmark = pytest.mark.django_db

NOVEMBER = {"start": "2026-11-01", "end": "2026-11-30"}


def _sent(account, subject="Monthly usage report", html="<p>kept</p>"):
    return SentReport.objects.create(
        account=account, frequency="monthly", period_start=date(2026, 11, 1), period_end=date(2026, 11, 30),
        recipients=["x@example.test"], subject=subject, html=html,
    )  # fmt: skip


def test_a_member_subscribes_and_removes_in_the_current_account(client, report_data, alice, charlie):
    client.force_login(charlie)  # a viewer subscribes too: reports are read-only
    response = client.post("/reports/subscriptions/add/", {"frequency": "weekly", "hour": "7", "model": "gpt-4o"})
    assert response.status_code == 302
    subscription = ReportSubscription.objects.get()
    assert (subscription.account, subscription.user, subscription.frequency, subscription.hour, subscription.model) == (
        report_data, charlie, "weekly", 7, "gpt-4o"
    )  # fmt: skip
    page = client.get("/reports/").content.decode()
    assert "Weekly (Monday)" in page and "gpt-4o" in page
    # Alice sees neither charlie's subscription nor can she remove it.
    client.force_login(alice)
    assert "gpt-4o</td>" not in client.get("/reports/").content.decode()
    assert client.post(f"/reports/subscriptions/{subscription.pk}/remove/").status_code == 404
    client.force_login(charlie)
    assert client.post(f"/reports/subscriptions/{subscription.pk}/remove/").status_code == 302
    assert not ReportSubscription.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"frequency": "weekly", "hour": "7", "model": "globex-secret-model"},  # another account's model
        {"frequency": "weekly", "hour": "7", "api_key": "globex-secret-key"},
        {"frequency": "hourly", "hour": "7"},
        {"frequency": "daily", "hour": "24"},
        {"frequency": "daily", "hour": "7", "model": "a\x00b"},
    ],
)
def test_a_subscription_takes_only_the_accounts_own_choices(client, report_data, alice, data):
    client.force_login(alice)
    response = client.post("/reports/subscriptions/add/", data)
    assert response.status_code == 400
    assert not ReportSubscription.objects.exists()


def test_an_operator_without_membership_does_not_subscribe(client, report_data, olivia):
    client.force_login(olivia)
    assert client.get("/reports/").status_code == 200
    assert client.post("/reports/subscriptions/add/", {"frequency": "daily", "hour": "8"}).status_code == 403
    assert not ReportSubscription.objects.exists()


def test_an_outsider_subscribes_in_their_own_account_only(client, report_data, bob):
    client.force_login(bob)
    assert client.post("/reports/subscriptions/add/", {"frequency": "daily", "hour": "8"}).status_code == 302
    assert ReportSubscription.objects.get().account.slug == "globex"


def test_sent_reports_are_listed_and_shown_as_sent_to_the_account_only(client, report_data, alice, bob):
    mine = _sent(report_data, html="<html><body><p>November as sent</p></body></html>")
    theirs = _sent(bob.memberships.get().account, subject="Globex secret report")
    client.force_login(alice)
    page = client.get("/reports/").content.decode()
    assert "Monthly usage report" in page and "Globex secret report" not in page
    response = client.get(f"/reports/sent/{mine.pk}/")
    assert response.status_code == 200 and response.content.decode() == mine.html
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert client.get(f"/reports/sent/{theirs.pk}/").status_code == 404


def test_generate_page_shows_the_figures_with_charts(client, report_data, alice):
    client.force_login(alice)
    response = client.get("/reports/generate/", NOVEMBER)
    assert response.status_code == 200
    page = response.content.decode()
    nov = expected(report_data, date(2026, 11, 1), date(2026, 11, 30))
    assert f"{nov['requests']:,}" in page and f"{nov['tokens']:,}" in page
    for name in ("cost_by_day", "requests_by_day", "error_rate", "cost_by_model", "cost_by_key", "errors_by_code"):
        assert f'id="figure-{name}"' in page
    assert "globex" not in page
    assert "css/report.css" in page and "/reports/generate/pdf?" in page


def test_generate_csv_is_the_daily_breakdown(client, report_data, alice):
    client.force_login(alice)
    response = client.get("/reports/generate/", {**NOVEMBER, "api_key": "team-b", "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    nov = expected(report_data, date(2026, 11, 1), date(2026, 11, 30), api_key="team-b")
    assert len(rows) == 30 and sum(int(row["requests"]) for row in rows) == nov["requests"]
    assert sum(Decimal(row["cost"]) for row in rows) == nov["cost"]


def test_the_pdf_holds_the_reports_text(client, report_data, alice):
    client.force_login(alice)
    response = client.get("/reports/generate/pdf", NOVEMBER)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="meterlog-acme-report-20261101-20261130.pdf"'
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    nov = expected(report_data, date(2026, 11, 1), date(2026, 11, 30))
    assert "Usage report - Acme Corp" in text
    assert "2026-11-01 - 2026-11-30 (Europe/Berlin)" in text
    assert f"Requests {nov['requests']:,}" in text or f"Requests\n{nov['requests']:,}" in text, text[:600]
    assert f"{nov['tokens']:,}" in text
    for name in ("gpt-4o", "claude-3", "team-a", "rate_limited", "Daily breakdown", "Alerts fired (0)"):
        assert name in text
    assert "globex" not in text


def test_the_pdf_of_a_filter_and_of_an_empty_range(client, report_data, alice):
    client.force_login(alice)
    response = client.get("/reports/generate/pdf", {**NOVEMBER, "model": "claude-3"})
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "model claude-3" in text and "gpt-4o" not in text
    response = client.get("/reports/generate/pdf", {"start": "2025-01-01", "end": "2025-01-31"})
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "No requests in this period." in text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-11-30", "end": "2026-11-01"}, "The end date is before the start date."),
        ({"start": "2020-01-01", "end": "2026-11-01"}, "at most 2 years"),
        ({"start": "yesterday"}, "Enter a valid date."),
        ({"start": "1900-01-01", "end": "1900-01-02"}, "Pick a date between 2000 and 2100."),
        ({"model": "globex-secret-model"}, "Select a valid choice."),
    ],
)
def test_bad_generate_parameters_are_a_400_with_a_message(client, report_data, alice, params, message):
    client.force_login(alice)
    page = client.get("/reports/generate/", params)
    assert page.status_code == 400 and message in page.content.decode()
    pdf = client.get("/reports/generate/pdf", params)
    assert pdf.status_code == 400 and message in pdf.content.decode()


def test_the_nav_links_the_reports_page(client, report_data, alice):
    client.force_login(alice)
    assert 'href="/reports/" class="active"' in client.get("/reports/").content.decode()


def test_without_priced_requests_no_empty_cost_chart_is_drawn(client, report_data, alice):
    from datetime import UTC, datetime, timedelta

    from tests.alerts.reports.conftest import ingest, records

    rows = records("jan", start=datetime(2026, 1, 10, 9, tzinfo=UTC), n=12, step=timedelta(hours=1),
                   models=["gpt-4o"], keys=["team-a"])  # fmt: skip
    ingest(report_data, [{k: v for k, v in row.items() if k != "cost"} for row in rows])
    client.force_login(alice)
    page = client.get("/reports/generate/", {"start": "2026-01-10", "end": "2026-01-10"}).content.decode()
    assert 'id="figure-requests_by_day"' in page and 'id="figure-error_rate"' in page
    assert 'id="figure-cost_by_day"' not in page and 'id="figure-cost_by_model"' not in page
    assert "Unpriced requests" in page


def test_the_reports_page_costs_the_same_queries_for_few_or_many_sent_reports(client, report_data, alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(alice)
    client.get("/reports/")  # the session's first request reads more
    counts = []
    for n in (1, 30):
        for _ in range(n - SentReport.objects.count()):
            _sent(report_data)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/reports/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_building_a_report_is_a_fixed_number_of_queries(report_data):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from alerts.reports.builder import ReportScope, build_report
    from alerts.reports.periods import report_period

    counts = []
    for first, last in ((date(2026, 11, 20), date(2026, 11, 20)), (date(2026, 10, 1), date(2026, 11, 30))):
        with CaptureQueriesContext(connection) as queries:
            build_report(ReportScope(report_data), report_period(first, last, report_data.zone))
        counts.append(len(queries))
    # On PostgreSQL each analytics read also sets and resets its statement timeout.
    assert counts[0] == counts[1] and counts[1] <= 30, counts


def test_the_pdf_takes_names_outside_latin_1(client, report_data, alice):
    from datetime import UTC, datetime, timedelta

    from tests.alerts.reports.conftest import ingest, records

    rows = records("uni", start=datetime(2026, 2, 10, 9, tzinfo=UTC), n=3, step=timedelta(hours=1),
                   models=["modèle-模型-🚀"], keys=["clé"])  # fmt: skip
    ingest(report_data, rows)
    client.force_login(alice)
    response = client.get("/reports/generate/pdf", {"start": "2026-02-10", "end": "2026-02-10"})
    assert response.status_code == 200
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "modèle-??-?" in text and "clé" in text


def test_the_mails_report_link_opens_its_account(client, report_data, globex):
    from tests.factories import make_user

    dana = make_user("dana@both.test", account=globex, role="viewer")
    dana.memberships.create(account=report_data, role="viewer")
    client.force_login(dana)
    client.post("/switch-account/", {"account": globex.pk})
    response = client.get("/reports/generate/", {"account": "acme", **NOVEMBER})
    assert response.status_code == 302 and response["Location"] == "/reports/generate/?start=2026-11-01&end=2026-11-30"
    page = client.get(response["Location"]).content.decode()
    assert "Acme Corp · 2026-11-01 – 2026-11-30" in page and "globex-secret" not in page
    # An account the user is not in: 404, and the current account stays.
    outsider = make_user("eve@globex.test", account=globex, role="viewer")
    client.force_login(outsider)
    assert client.get("/reports/generate/", {"account": "acme", **NOVEMBER}).status_code == 404
    assert "Globex · 2026-11-01" in client.get("/reports/generate/", NOVEMBER).content.decode()


def test_the_mails_console_link_opens_the_analytics_page_in_its_account(client, report_data, globex):
    from tests.factories import make_user

    dana = make_user("dana@both.test", account=globex, role="viewer")
    dana.memberships.create(account=report_data, role="viewer")
    client.force_login(dana)
    client.post("/switch-account/", {"account": globex.pk})
    target = "/analytics/?tab=cost&range=custom&start=2026-11-01&end=2026-11-30"
    response = client.get("/reports/open/", {"account": "acme", "next": target})
    assert response.status_code == 302 and response["Location"] == target
    assert "claude-3" in client.get(target).content.decode()  # acme's figures now
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.get("/reports/open/", {"account": "acme", "next": evil})
        assert response["Location"] == "/analytics/", evil
    assert client.get("/reports/open/", {"account": "nobody", "next": target}).status_code == 404
