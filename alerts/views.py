"""The alerts pages: rules with their state, the event history, the rule form with its
backtest, test notifications. Members read; admins and owners change (issue 16)."""

from django.contrib import messages
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from alerts import console_selectors as selectors
from alerts import services
from alerts.backtest import backtest
from alerts.forms import AlertRuleForm
from alerts.links import event_logs_path
from alerts.models import AlertRule, Channel, DeliveryStatus, RuleKind
from alerts.notifications import email_recipients, send_test
from console.audit import Actor
from console.models import Role
from console.tenancy import has_role, require_account, require_admin


@require_GET
@require_account()
def alert_list(request):
    before = request.GET.get("before")
    if before is not None and not before.isdigit():
        return HttpResponseBadRequest("before must be an event id (a whole number).")
    events, next_before = selectors.events_page(account=request.account, before=int(before) if before else None)
    for event in events:
        event.logs_path = event_logs_path(event)
    context = {
        "rules": selectors.rules_of(account=request.account),
        "events": events,
        "next_before": next_before,
        "paged": before is not None,
        "can_edit": has_role(request.account_role, Role.ADMIN),
    }
    return render(request, "alerts/list.html", context)


def _page(request, *, rule: AlertRule | None, form: AlertRuleForm, status: int = 200, **extra):
    """The rule form page. The backtest is of the saved rule, or of the submitted values on
    a preview; recent deliveries and the test buttons only for a saved rule."""
    context = {
        "rule": rule,
        "form": form,
        "kinds": RuleKind.choices,
        "param_fields": form.param_fields(),
        "backtest": extra.pop("backtest", None),
        "deliveries": selectors.recent_deliveries(rule=rule) if rule else [],
        "recipients": email_recipients(rule) if rule else [],
        **extra,
    }
    if rule is not None and context["backtest"] is None:
        context["backtest"] = backtest(rule)
    return render(request, "alerts/edit.html", context, status=status)


def _submit(request, rule: AlertRule | None):
    form = AlertRuleForm(request.POST, account=request.account, instance=rule)
    if not form.is_valid():
        return _page(request, rule=rule, form=form, status=400)
    values = form.rule_values()
    if "preview" in request.POST:
        draft = AlertRule(account=request.account, **values)
        return _page(request, rule=rule, form=form, backtest=backtest(draft), preview=True)
    actor = Actor.from_request(request)
    users = form.cleaned_data["email_users"]
    regenerate = form.cleaned_data["regenerate_secret"]
    if rule is None:
        rule, secret = services.rule_create(account=request.account, values=values, email_users=users, actor=actor)
    else:
        rule, secret = services.rule_update(
            rule=rule, values=values, email_users=users, actor=actor, regenerate_secret=regenerate
        )
    if secret:
        # The secret exists only in this response (never_cache, no redirect): shown once.
        form = AlertRuleForm(account=request.account, instance=rule)
        return _page(request, rule=rule, form=form, new_secret=secret, saved=True)
    messages.success(request, f"Alert rule “{rule}” saved.")
    return redirect("alerts:edit", pk=rule.pk)


@never_cache
@require_http_methods(["GET", "POST"])
@require_admin
def rule_new(request):
    if request.method == "POST":
        return _submit(request, None)
    kind = request.GET.get("kind")
    initial = {"kind": kind} if kind in RuleKind.values else {}
    form = AlertRuleForm(account=request.account, initial={"enabled": True, "email_enabled": True, **initial})
    return _page(request, rule=None, form=form)


@never_cache
@require_http_methods(["GET", "POST"])
@require_admin
def rule_edit(request, pk: int):
    rule = selectors.rule_of(account=request.account, pk=pk)
    if request.method == "POST":
        return _submit(request, rule)
    return _page(request, rule=rule, form=AlertRuleForm(account=request.account, instance=rule))


@require_POST
@require_admin
def rule_delete(request, pk: int):
    rule = selectors.rule_of(account=request.account, pk=pk)
    services.rule_delete(rule=rule, actor=Actor.from_request(request))
    messages.success(request, f"Alert rule “{rule}” deleted. Its events stay in the history.")
    return redirect("alerts:list")


@require_POST
@require_admin
def rule_test(request, pk: int, channel: str):
    rule = selectors.rule_of(account=request.account, pk=pk)
    if channel not in Channel.values:
        raise Http404("No such channel")
    deliveries = send_test(rule, channel)
    if not deliveries:
        problem = (
            "Email is off for this rule, or it has no recipient with an address."
            if channel == Channel.EMAIL
            else "This rule has no webhook URL."
        )
        form = AlertRuleForm(account=request.account, instance=rule)
        return _page(request, rule=rule, form=form, status=400, test_problem=problem)
    for delivery in deliveries:
        if delivery.status == DeliveryStatus.SENT:
            messages.success(request, f"Test {delivery.get_channel_display().lower()} sent to {delivery.target}.")
        else:
            channel_name = delivery.get_channel_display().lower()
            messages.error(request, f"Test {channel_name} to {delivery.target} failed: {delivery.last_error}")
    return redirect(reverse("alerts:edit", args=[rule.pk]) + "#channels")
