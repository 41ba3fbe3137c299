"""The console shell's own pages: no-account, account switching and the owners' settings
(account and privacy mode, API tokens, members, the access log). Writes go through
console.services. (The home page, `/`, is the analytics dashboard: analytics/home_urls.py.)"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from console import services, tenancy, zones
from console.audit import Actor, access_log_page
from console.forms import AccountSettingsForm, MemberAddForm, MemberRoleForm, PrivacyModeForm, TokenCreateForm
from console.models import ApiToken, Membership, Role, ZoneChoice
from console.privacy import RECORDED_FIELDS

owner_required = tenancy.require_account(min_role=Role.OWNER)


@login_required
def no_account(request):
    if tenancy.current_account(request) is not None:
        return redirect("logs:list")
    return render(request, "console/no_account.html")


@require_POST
@login_required
def switch_account(request):
    try:
        account_id = int(request.POST.get("account", ""))
    except ValueError:
        return render(request, "403.html", {"exception": "Pick an account from the list."}, status=400)
    # Raises PermissionDenied (403) for an account the user is not a member of.
    account = tenancy.switch_account(request, account_id)
    messages.info(request, f"Now viewing {account.name}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = "logs:list"
    return redirect(target)


@require_POST
@login_required
def zone_choice(request):
    """The topbar's "Times in" switch: remembered for the user, used by every page."""
    choice = request.POST.get("choice", "")
    if choice not in ZoneChoice.values:
        return render(request, "403.html", {"exception": "Pick the account's zone or yours."}, status=400)
    zones.set_zone_choice(request, choice)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = "console:home"
    return redirect(target)


# --- Account -------------------------------------------------------------------------


def _account_context(request, form):
    return {"form": form, "account": request.account, "tab": "account", "recorded_fields": RECORDED_FIELDS}


@owner_required
def settings_account(request):
    account = request.account
    form = AccountSettingsForm(request.POST or None, instance=account)
    if request.method == "POST" and form.is_valid():
        zone_changed = services.account_update_settings(
            account=account, actor=Actor.from_request(request), **form.cleaned_data
        )
        messages.success(request, "Account settings saved.")
        if zone_changed:
            messages.info(request, "Daily figures are being recomputed for the new time zone.")
        return redirect("console:settings")
    return render(request, "console/settings_account.html", _account_context(request, form))


@require_POST
@owner_required
def settings_privacy(request):
    form = PrivacyModeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose on or off for privacy mode.")
        return redirect("console:settings")
    changed = services.account_set_privacy_mode(
        account=request.account, enabled=form.enabled, actor=Actor.from_request(request)
    )
    if changed and form.enabled:
        messages.success(request, "Privacy mode is on: records received from now on are stored reduced.")
    elif changed:
        messages.success(request, "Privacy mode is off: records received from now on are stored in full.")
    return redirect("console:settings")


@owner_required
def settings_access_log(request):
    try:
        before = int(request.GET["before"]) if request.GET.get("before") else None
    except ValueError:
        before = None
    events, next_before = access_log_page(account=request.account, before=before)
    context = {"events": events, "next_before": next_before, "paged": before is not None, "tab": "access_log"}
    return render(request, "console/settings_access_log.html", context)


# --- API tokens ----------------------------------------------------------------------


def _tokens_context(request, form):
    tokens = ApiToken.objects.filter(account=request.account).select_related("created_by")
    return {"tokens": tokens, "form": form, "tab": "tokens"}


@owner_required
def settings_tokens(request):
    return render(request, "console/settings_tokens.html", _tokens_context(request, TokenCreateForm()))


@never_cache
@require_POST
@owner_required
def token_create(request):
    form = TokenCreateForm(request.POST)
    if not form.is_valid():
        return render(request, "console/settings_tokens.html", _tokens_context(request, form), status=400)
    token, raw = services.token_create(
        account=request.account,
        scope=form.cleaned_data["scope"],
        name=form.cleaned_data["name"],
        created_by=request.user,
        actor=Actor.from_request(request),
    )
    # The secret exists only in this response (not in the session, not in a redirect):
    # reloading or going back cannot show it again. never_cache keeps it out of caches.
    return render(request, "console/token_created.html", {"token": token, "raw_token": raw, "tab": "tokens"})


@require_POST
@owner_required
def token_revoke(request, token_id: int):
    try:
        token = services.token_revoke(account=request.account, token_id=token_id, actor=Actor.from_request(request))
    except ApiToken.DoesNotExist as exc:
        raise Http404("No such token") from exc
    messages.success(request, f"Token {token.hint}… revoked: requests using it are refused from now on.")
    return redirect("console:settings_tokens")


# --- Members -------------------------------------------------------------------------


def _members_context(request, form):
    memberships = Membership.objects.filter(account=request.account).select_related("user").order_by("user__username")
    owners = sum(1 for m in memberships if m.role == Role.OWNER)
    return {"memberships": memberships, "form": form, "roles": Role.choices, "owners": owners, "tab": "members"}


@owner_required
def settings_members(request):
    form = MemberAddForm(account=request.account)
    return render(request, "console/settings_members.html", _members_context(request, form))


@require_POST
@owner_required
def member_add(request):
    form = MemberAddForm(request.POST, account=request.account)
    if form.is_valid():
        try:
            membership = services.member_add(
                account=request.account,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                password=form.cleaned_data["password"] or None,
                actor=Actor.from_request(request),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"{membership.user.get_username()} added as {membership.get_role_display()}.")
            return redirect("console:settings_members")
    return render(request, "console/settings_members.html", _members_context(request, form), status=400)


@require_POST
@owner_required
def member_role(request, membership_id: int):
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a valid role.")
        return redirect("console:settings_members")
    try:
        membership = services.member_set_role(
            account=request.account,
            membership_id=membership_id,
            role=form.cleaned_data["role"],
            actor=Actor.from_request(request),
        )
    except Membership.DoesNotExist as exc:
        raise Http404("No such member") from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{membership.user.get_username()} is now {membership.get_role_display()}.")
    return redirect("console:settings_members")


@require_POST
@owner_required
def member_remove(request, membership_id: int):
    try:
        membership = services.member_remove(
            account=request.account, membership_id=membership_id, actor=Actor.from_request(request)
        )
    except Membership.DoesNotExist as exc:
        raise Http404("No such member") from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("console:settings_members")
    messages.success(request, f"{membership.user.get_username()} removed from {request.account.name}.")
    if membership.user_id == request.user.pk:
        return redirect("console:home")
    return redirect("console:settings_members")
