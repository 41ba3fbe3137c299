"""The reports pages (/reports/): one's own subscriptions in the current account and the
account's sent reports; "Generate report" for any range and filter (page and PDF); and the
unsubscribe link of a report mail, which works without logging in."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from alerts.models import ReportSubscription, SentReport
from alerts.reports import pdf
from alerts.reports.builder import ReportScope, UsageReport, build_report
from alerts.reports.charts import page_charts
from alerts.reports.email import report_context, subscription_from_token
from alerts.reports.forms import GenerateForm, SubscriptionForm
from alerts.reports.periods import report_period
from alerts.reports.sending import first_period_to_skip
from analytics.usage import UsageError
from console.models import Membership
from console.tenancy import accounts_for_user, require_account, switch_account
from logs.selectors import QueryTimeout

SENT_SHOWN = 100
# The kept HTML of a report mail is shown as it was sent: no script may run in it, nothing
# may load from elsewhere.
SENT_HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


def _page_context(request, form=None) -> dict:
    account = request.account
    subscriptions = ReportSubscription.objects.filter(account=account, user=request.user).order_by("frequency", "pk")
    sent = (
        SentReport.objects.filter(account=account)
        .defer("html", "text", "csv")
        .order_by("-period_start", "-pk")[:SENT_SHOWN]
    )
    return {
        "form": form or SubscriptionForm(account=account),
        "subscriptions": subscriptions,
        "sent_reports": sent,
        "is_member": Membership.objects.filter(user=request.user, account=account).exists(),
        "account_zone": account.timezone,
        "sent_shown": SENT_SHOWN,
    }


@require_GET
@require_account()
def reports_page(request):
    return render(request, "alerts/reports/page.html", _page_context(request))


@require_POST
@require_account()
def subscription_add(request):
    account = request.account
    # Reports go to members: an operator reading the account as a viewer does not subscribe.
    if not Membership.objects.filter(user=request.user, account=account).exists():
        raise PermissionDenied("Only members of the account subscribe to its reports.")
    if not request.user.email:
        messages.error(request, "Your user has no email address: a report has nowhere to go.")
        return redirect("reports:index")
    form = SubscriptionForm(request.POST, account=account)
    if not form.is_valid():
        return render(request, "alerts/reports/page.html", _page_context(request, form), status=400)
    data = form.cleaned_data
    subscription = ReportSubscription(
        account=account, user=request.user, frequency=data["frequency"], hour=data["hour"],
        model=data["model"], api_key=data["api_key"],
    )  # fmt: skip
    subscription.last_period_start = first_period_to_skip(subscription, now=timezone.now())
    subscription.save()
    messages.success(request, f"Subscribed: {subscription.get_frequency_display()} at {subscription.hour:02d}:00.")
    return redirect("reports:index")


@require_POST
@require_account()
def subscription_remove(request, subscription_id: int):
    subscription = get_object_or_404(ReportSubscription, pk=subscription_id, account=request.account, user=request.user)
    subscription.delete()
    messages.success(request, "Subscription removed.")
    return redirect("reports:index")


@require_GET
@require_account()
def sent_report(request, sent_id: int):
    sent = get_object_or_404(SentReport, pk=sent_id, account=request.account)
    response = HttpResponse(sent.html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = SENT_HTML_CSP
    return response


def _generated(request) -> tuple[GenerateForm, UsageReport | None, str | None]:
    account = request.account
    # The page reads its dates in the topbar's zone, like every page; mailed reports keep
    # the account's (alerts.reports.sending).
    zone = timezone.get_current_timezone()
    today = timezone.now().astimezone(zone).date()
    form = GenerateForm(request.GET, account=account, today=today)
    if not form.is_valid():
        return form, None, None
    data = form.cleaned_data
    scope = ReportScope(account, model=data["model"], api_key=data["api_key"])
    try:
        return form, build_report(scope, report_period(data["start"], data["end"], zone)), None
    except (QueryTimeout, UsageError) as exc:
        return form, None, getattr(exc, "message", None) or str(exc) or QueryTimeout.message


def _switched(request):
    """`?account=<slug>` (the link in a report mail) makes that account the current one when
    the user may see it, and reloads without it; None when there is nothing to switch."""
    slug = request.GET.get("account")
    if slug is None or slug == request.account.slug:
        return None
    account = accounts_for_user(request.user).filter(slug=slug).first()
    if account is None:
        raise Http404("No such account among yours.")
    switch_account(request, account.pk)
    query = request.GET.copy()
    del query["account"]
    return redirect(f"{request.path}?{query.urlencode()}")


@require_GET
@require_account()
def open_in_console(request):
    """/reports/open/?account=<slug>&next=<path>: a report mail's link to the console, opened
    in the report's account (when the user may see it) at a path of this site only."""
    account = accounts_for_user(request.user).filter(slug=request.GET.get("account", "")).first()
    if account is None:
        raise Http404("No such account among yours.")
    switch_account(request, account.pk)
    target = request.GET.get("next", "")
    local = target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts=None)
    return redirect(target if local else reverse("analytics:page"))


@require_GET
@require_account()
def generate(request):
    switched = _switched(request)
    if switched is not None:
        return switched
    form, report, message = _generated(request)
    if report is not None and request.GET.get("format") == "csv":
        response = HttpResponse(report.daily_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{report.csv_filename()}"'
        return response
    context = {"form": form, "report": report, "message": message, "charts": []}
    if report is not None:
        with timezone.override(report.period.zone):
            context |= report_context(report) | {"charts": page_charts(report)}
            return render(request, "alerts/reports/generate.html", context)
    return render(request, "alerts/reports/generate.html", context, status=400 if form.errors else 503)


@require_GET
@require_account()
def generate_pdf(request):
    form, report, message = _generated(request)
    if report is None:
        text = message or "\n".join(f"{name}: {error}" for name, errors in form.errors.items() for error in errors)
        return HttpResponse(text, status=400 if form.errors else 503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(pdf.report_pdf(report), content_type="application/pdf")
    filename = f"meterlog-{report.account.slug}-report-{report.first_day:%Y%m%d}-{report.last_day:%Y%m%d}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """No login: the signed token is the credential, and it names one subscription only. GET
    asks, POST turns it off (mail scanners that follow links only GET)."""
    subscription = subscription_from_token(token)
    if subscription is None:
        raise Http404("This unsubscribe link is not valid (or its subscription was removed).")
    done = False
    if request.method == "POST":
        ReportSubscription.objects.filter(pk=subscription.pk).update(active=False)
        subscription.active, done = False, True
    return render(request, "alerts/reports/unsubscribe.html", {"subscription": subscription, "done": done})
