"""Writes of alert rules from the console: create, change, delete, each with its access log
entry in the same transaction. A webhook's signing secret is made here and returned once."""

from django.db import transaction

from alerts.models import AlertRule
from alerts.webhooks import generate_secret
from console.audit import Actor, record_event
from console.models import Account, AuditAction
from console.sealed import seal

# Fields whose old and new values the access log shows. The webhook URL is not one: chat
# webhook URLs are secrets themselves, so the log says only that it changed.
_LOGGED = ("name", "enabled", "model", "api_key", "params", "cooldown_minutes", "email_enabled", "email_addresses")


def _describe(value):
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return value


def _apply_secret(rule: AlertRule, *, regenerate: bool) -> str | None:
    """A new secret when a webhook URL is set without one, or on request; the raw secret
    (to show once) or None. No URL: no secret."""
    if not rule.webhook_url:
        rule.webhook_secret_sealed = ""
        return None
    if rule.webhook_secret_sealed and not regenerate:
        return None
    secret = generate_secret()
    rule.webhook_secret_sealed = seal(secret)
    return secret


@transaction.atomic
def rule_create(
    *, account: Account, values: dict, email_users, actor: Actor, regenerate_secret: bool = False
) -> tuple[AlertRule, str | None]:
    rule = AlertRule(account=account, created_by=actor.user, **values)
    secret = _apply_secret(rule, regenerate=True)
    rule.save()
    rule.email_users.set(email_users)
    record_event(
        account=account,
        action=AuditAction.ALERT_RULE_CREATED,
        actor=actor,
        details={"rule": str(rule), "kind": rule.kind, "id": rule.pk, "webhook": bool(rule.webhook_url)},
    )
    return rule, secret


@transaction.atomic
def rule_update(
    *, rule: AlertRule, values: dict, email_users, actor: Actor, regenerate_secret: bool = False
) -> tuple[AlertRule, str | None]:
    rule = AlertRule.objects.select_for_update().get(pk=rule.pk, account=rule.account)
    before = {name: getattr(rule, name) for name in _LOGGED}
    old_url, old_users = rule.webhook_url, sorted(rule.email_users.values_list("email", flat=True))
    for name, value in values.items():
        if name != "kind":
            setattr(rule, name, value)
    if rule.webhook_url != old_url and not old_url:
        regenerate_secret = True
    secret = _apply_secret(rule, regenerate=regenerate_secret)
    rule.save()
    rule.email_users.set(email_users)
    changes = {
        name: [_describe(before[name]), _describe(getattr(rule, name))]
        for name in _LOGGED
        if before[name] != getattr(rule, name)
    }
    new_users = sorted(rule.email_users.values_list("email", flat=True))
    if new_users != old_users:
        changes["email_users"] = [_describe(old_users), _describe(new_users)]
    if rule.webhook_url != old_url:
        changes["webhook_url"] = ["set" if old_url else "none", "changed" if rule.webhook_url else "none"]
    if secret and old_url:
        changes["webhook_secret"] = ["old", "new"]
    if changes:
        record_event(
            account=rule.account,
            action=AuditAction.ALERT_RULE_CHANGED,
            actor=actor,
            details={"rule": str(rule), "id": rule.pk, "changes": changes},
        )
    return rule, secret


@transaction.atomic
def rule_delete(*, rule: AlertRule, actor: Actor) -> None:
    details = {"rule": str(rule), "kind": rule.kind, "id": rule.pk}
    account = rule.account
    rule.delete()
    record_event(account=account, action=AuditAction.ALERT_RULE_DELETED, actor=actor, details=details)
