"""Writes on accounts, their members and their API tokens.

Shared by the management commands and the console's settings pages, so both apply the
same rules. Bad input raises django.core.exceptions.ValidationError with a message per
field; callers show it (a form error, or a CommandError). Each change an owner makes is
written to the account's access log (console.audit) in the same transaction; `actor` says
who (None: a management command).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import transaction
from django.utils import timezone as dj_timezone

from console.audit import Actor, record_event
from console.models import (
    MAX_RETENTION_DAYS,
    Account,
    ApiToken,
    AuditAction,
    Membership,
    Role,
    Tier,
    TokenScope,
    validate_timezone_name,
)
from console.signals import account_zone_changed


def _choice(value: str, choices, what: str) -> str:
    if value not in choices.values:
        raise ValidationError({what: f"{value!r} is not a {what}; choose one of: {', '.join(choices.values)}."})
    return value


@transaction.atomic
def account_create(
    *,
    slug: str,
    name: str,
    tier: str = Tier.STANDARD,
    retention_days: int | None = None,
    timezone: str = "UTC",
    privacy_mode: bool = False,
) -> Account:
    errors = {}
    try:
        validate_slug(slug)
    except ValidationError:
        errors["slug"] = f"{slug!r} is not a valid slug (letters, digits, hyphens, underscores)."
    else:
        if Account.objects.filter(slug=slug).exists():
            errors["slug"] = f"An account with the slug {slug!r} already exists."
    if not name.strip():
        errors["name"] = "The name must not be empty."
    try:
        _choice(tier, Tier, "tier")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if retention_days is not None and not 1 <= retention_days <= MAX_RETENTION_DAYS:
        errors["retention_days"] = f"Retention must be between 1 and {MAX_RETENTION_DAYS} days."
    try:
        validate_timezone_name(timezone)
    except ValidationError as exc:
        errors["timezone"] = exc.messages
    if errors:
        raise ValidationError(errors)
    return Account.objects.create(
        slug=slug,
        name=name.strip(),
        tier=tier,
        retention_days_override=retention_days,
        timezone=timezone,
        privacy_mode=privacy_mode,
    )


@transaction.atomic
def account_update_settings(*, account: Account, name: str, timezone: str, actor: Actor | None = None) -> bool:
    """Save what an owner may change on the settings form, validated by
    console.forms.AccountSettingsForm; returns whether the reporting zone changed, and then
    sends console.signals.account_zone_changed. (Privacy mode has its own switch:
    account_set_privacy_mode.)

    The stored row is the "before" of the audit event: a ModelForm has already changed
    `account` in memory while validating.
    """
    stored = Account.objects.select_for_update().get(pk=account.pk)
    changes = {
        field: [getattr(stored, field), value]
        for field, value in (("name", name), ("timezone", timezone))
        if getattr(stored, field) != value
    }
    account.name = name
    account.timezone = timezone
    account.save(update_fields=["name", "timezone"])
    if changes:
        record_event(account=account, action=AuditAction.SETTINGS_CHANGED, actor=actor, details={"changes": changes})
    zone_changed = "timezone" in changes
    if zone_changed:
        # Daily figures move to the new zone's days (analytics, in the background).
        account_zone_changed.send(sender=Account, account=account)
    return zone_changed


@transaction.atomic
def account_set_privacy_mode(*, account: Account, enabled: bool, actor: Actor | None = None) -> bool:
    """Switch privacy mode; returns whether it changed. Ingest reads the flag per batch, so
    records received from the commit on are stored reduced (or in full again); rows already
    stored are not rewritten. Locked, so two owners switching at once log two real changes
    or one change and a no-op, never a change that did not happen."""
    stored = Account.objects.select_for_update().get(pk=account.pk)
    account.privacy_mode = enabled
    if stored.privacy_mode == enabled:
        return False
    Account.objects.filter(pk=account.pk).update(privacy_mode=enabled)
    action = AuditAction.PRIVACY_ON if enabled else AuditAction.PRIVACY_OFF
    record_event(account=account, action=action, actor=actor)
    return True


@transaction.atomic
def token_create(
    *, account: Account, scope: str, name: str = "", created_by=None, actor: Actor | None = None
) -> tuple[ApiToken, str]:
    """A new token; returns (token, raw secret). The secret is shown once and never stored."""
    _choice(scope, TokenScope, "scope")
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise ValidationError({"name": "The token name is too long."})
    if actor is None and created_by is not None:
        actor = Actor(user=created_by)
    token, raw = ApiToken.generate(account=account, scope=scope, name=name, created_by=created_by)
    record_event(account=account, action=AuditAction.TOKEN_CREATED, actor=actor, details=_token_details(token))
    return token, raw


def _token_details(token: ApiToken) -> dict:
    return {"token_id": token.pk, "hint": token.hint, "name": token.name, "scope": token.scope}


@transaction.atomic
def member_add(
    *, account: Account, email: str, role: str, password: str | None = None, actor: Actor | None = None
) -> Membership:
    """Give the user with this email (its username) a role in the account.

    Creates the user when there is none, with `password` (required then, and checked by the
    password validators). An existing user keeps their password: adding someone to an
    account must not be a way to reset their login. An existing membership gets the new
    role.
    """
    _choice(role, Role, "role")
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": f"{email!r} is not a valid email address."}) from exc
    User = get_user_model()
    user = User.objects.filter(username__iexact=email).first()
    user_created = user is None
    if user is None:
        if not password:
            raise ValidationError({"password": "A password is needed to create a new user."})
        user = User(username=email, email=email)
        validate_password(password, user)
        user.set_password(password)
        user.save()
    previous = Membership.objects.filter(user=user, account=account).values_list("role", flat=True).first()
    membership, _ = Membership.objects.update_or_create(user=user, account=account, defaults={"role": role})
    if previous is None:
        details = {"member": user.get_username(), "role": role, "new_user": user_created}
        record_event(account=account, action=AuditAction.MEMBER_ADDED, actor=actor, details=details)
    elif previous != role:
        details = {"member": user.get_username(), "role": [previous, role]}
        record_event(account=account, action=AuditAction.MEMBER_ROLE_CHANGED, actor=actor, details=details)
    return membership


@transaction.atomic
def token_revoke(*, account: Account, token_id: int, actor: Actor | None = None) -> ApiToken:
    """Revoke one of the account's tokens (ApiToken.DoesNotExist for another account's).
    Revoking a revoked token changes nothing and logs nothing."""
    token = ApiToken.objects.select_for_update().get(account=account, pk=token_id)
    if token.revoked_at is None:
        token.revoked_at = dj_timezone.now()
        token.save(update_fields=["revoked_at"])
        record_event(account=account, action=AuditAction.TOKEN_REVOKED, actor=actor, details=_token_details(token))
    return token


def _check_keeps_an_owner(membership: Membership) -> None:
    if membership.role != Role.OWNER:
        return
    # Locked, so two owners demoting each other at once cannot both succeed.
    owners = list(
        Membership.objects.select_for_update().filter(account_id=membership.account_id, role=Role.OWNER).values("pk")
    )
    if len(owners) <= 1:
        raise ValidationError("An account needs at least one owner; make someone else owner first.")


@transaction.atomic
def member_set_role(*, account: Account, membership_id: int, role: str, actor: Actor | None = None) -> Membership:
    _choice(role, Role, "role")
    membership = Membership.objects.select_related("user").get(account=account, pk=membership_id)
    if role != Role.OWNER:
        _check_keeps_an_owner(membership)
    previous = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    if previous != role:
        details = {"member": membership.user.get_username(), "role": [previous, role]}
        record_event(account=account, action=AuditAction.MEMBER_ROLE_CHANGED, actor=actor, details=details)
    return membership


@transaction.atomic
def member_remove(*, account: Account, membership_id: int, actor: Actor | None = None) -> Membership:
    membership = Membership.objects.select_related("user").get(account=account, pk=membership_id)
    _check_keeps_an_owner(membership)
    details = {"member": membership.user.get_username(), "role": membership.role}
    membership.delete()
    record_event(account=account, action=AuditAction.MEMBER_REMOVED, actor=actor, details=details)
    return membership
