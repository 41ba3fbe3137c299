"""Deletion request pages: an account's owners file requests and follow them; operators
(staff) approve or reject the pending ones. Thin: forms validate, services write, selectors
read. Another account's request is not found (404), never shown."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from console.models import Role
from console.tenancy import require_account, require_operator
from logs.deletions import selectors, services
from logs.deletions.forms import DecisionForm, DeletionRequestForm
from logs.deletions.models import DeletionRequest

DECIDED_SHOWN = 20


@require_account(Role.OWNER)
@require_http_methods(["GET", "POST"])
def deletion_requests(request):
    form = DeletionRequestForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            filed = services.deletion_file(
                account=request.account,
                user=request.user,
                reason=data["reason"],
                start=data["start"],
                end=data["end"],
                api_key=data["api_key"],
                request_ids=data["request_ids"],
            )
            messages.info(request, f"Deletion request {filed.pk} filed: an operator will approve or reject it.")
            return redirect("logs:deletion_detail", pk=filed.pk)
        status = 400
    context = {
        "account": request.account,
        "form": form,
        "requests": selectors.requests_of_account(account=request.account)[:50],
    }
    return render(request, "logs/deletions/list.html", context, status=status)


@require_account(Role.OWNER)
def deletion_detail(request, pk: int):
    found = selectors.request_of_account(account=request.account, pk=pk)
    if found is None:
        raise Http404("No such deletion request")
    context = {"account": request.account, "req": found, "events": selectors.events_of(found)}
    return render(request, "logs/deletions/detail.html", context)


def _operator_page(request, *, form=None, form_for=None, status=200):
    pending = list(selectors.pending_requests())
    rows = [(item, selectors.matching_count(item), form if item.pk == form_for else DecisionForm()) for item in pending]
    context = {
        "pending": rows,
        "decided": selectors.decided_requests(limit=DECIDED_SHOWN),
        "decided_limit": DECIDED_SHOWN,
        "cap": selectors.MATCH_COUNT_CAP,
    }
    return render(request, "logs/deletions/operator.html", context, status=status)


@require_operator
def deletions_operator(request):
    return _operator_page(request)


@require_operator
@require_POST
def deletion_decide(request, pk: int):
    target = get_object_or_404(DeletionRequest.objects.select_related("account"), pk=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _operator_page(request, form=form, form_for=target.pk, status=400)
    decide = services.deletion_approve if form.cleaned_data["decision"] == "approve" else services.deletion_reject
    try:
        decide(request=target, user=request.user, note=form.cleaned_data["note"])
    except services.DecisionRefused as exc:
        form.add_error(None, str(exc))
        return _operator_page(request, form=form, form_for=target.pk, status=409)
    outcome = "approved: it runs shortly" if form.cleaned_data["decision"] == "approve" else "rejected"
    messages.info(request, f"Deletion request {target.pk} of {target.account.name} {outcome}.")
    return redirect("logs:deletions_operator")
