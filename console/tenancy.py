"""Which accounts a user may see, and which one a request is about.

Every view that shows log data gets its account from `require_account` (or, for the
operator's all-accounts pages, passes `require_operator`); the reads then go through the
tenant gate in `logs.gate` with that account.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from console.models import Account, Membership, Role

SESSION_KEY = "meterlog_account_id"


def accounts_for_user(user):
    """Accounts the user may see: operators (staff) see every account, others their memberships."""
    if not user.is_authenticated:
        return Account.objects.none()
    if user.is_staff:
        return Account.objects.all()
    return Account.objects.filter(memberships__user=user)


ROLE_ORDER = {Role.VIEWER: 0, Role.ADMIN: 1, Role.OWNER: 2}


def role_for(user, account: Account) -> str | None:
    """The user's role in the account. An operator (staff) without a membership reads every
    account as a viewer (browse and export, for support); what an owner manages (members,
    tokens, privacy, deletion requests) needs an owner's membership: operators have their own
    pages (approvals, retention, all accounts) and the Django admin."""
    membership = Membership.objects.filter(user=user, account=account).only("role").first()
    if membership is not None:
        return membership.role
    return Role.VIEWER if user.is_staff else None


def has_role(role: str | None, min_role: str) -> bool:
    return role is not None and ROLE_ORDER[role] >= ROLE_ORDER[min_role]


def current_account(request) -> Account | None:
    """The account the request is about, cached on the request.

    The session remembers the last account picked in the switcher; it is re-checked
    against the user's accounts on every request, so a revoked membership takes effect at once.
    """
    if hasattr(request, "_meterlog_account"):
        return request._meterlog_account
    allowed = accounts_for_user(request.user)
    account = None
    account_id = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if account_id is not None:
        account = allowed.filter(pk=account_id).first()
    if account is None:
        account = allowed.order_by("name", "pk").first()
        if account is not None and hasattr(request, "session"):
            request.session[SESSION_KEY] = account.pk
    request._meterlog_account = account
    return account


def switch_account(request, account_id: int) -> Account:
    account = accounts_for_user(request.user).filter(pk=account_id).first()
    if account is None:
        raise PermissionDenied("You are not a member of that account")
    request.session[SESSION_KEY] = account.pk
    request._meterlog_account = account
    return account


def require_account(min_role: str | None = None):
    """View decorator: logged in, with a current account (and at least `min_role`).

    Sets `request.account` and `request.account_role`.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            account = current_account(request)
            if account is None:
                return redirect("console:no_account")
            role = role_for(request.user, account)
            if role is None:
                raise PermissionDenied
            if min_role is not None and not has_role(role, min_role):
                raise PermissionDenied(f"This page needs the {min_role} role")
            request.account = account
            request.account_role = role
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# The two levels above viewer (issue 15): admins name API keys (and, later, manage alert
# rules); owners also manage members, tokens, privacy, deletion requests and imports.
require_admin = require_account(min_role=Role.ADMIN)
require_owner = require_account(min_role=Role.OWNER)


def require_operator(view):
    """View decorator: logged in as an operator (staff), for the all-accounts pages."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("The all-accounts view is for operators.")
        return view(request, *args, **kwargs)

    return wrapper
