from console import tenancy


def current_account(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_account": tenancy.current_account(request),
        # Lazy: only evaluated by templates that render the switcher.
        "switchable_accounts": tenancy.accounts_for_user(user).order_by("name"),
    }
