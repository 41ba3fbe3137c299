"""Writes of the log browser's own pages: naming the gateway's API keys (admins and owners)."""

from django.core.exceptions import ValidationError
from django.db import transaction

from console.audit import Actor, record_event
from console.models import Account, AuditAction
from logs.models import ApiKey


@transaction.atomic
def api_key_rename(*, account: Account, key_id: int, display_name: str, actor: Actor | None = None) -> ApiKey:
    """Give one of the account's keys a display name (empty: none); a rename is in the access
    log with the old and new name. Raises ApiKey.DoesNotExist for another account's key."""
    display_name = display_name.strip()
    if len(display_name) > ApiKey._meta.get_field("display_name").max_length:
        raise ValidationError("The name is too long (200 characters at most).")
    if any(ord(char) < 32 for char in display_name):
        raise ValidationError("The name cannot hold control characters.")
    key = ApiKey.objects.select_for_update().get(account=account, pk=key_id)
    old = key.display_name
    if old != display_name:
        key.display_name = display_name
        key.save(update_fields=["display_name"])
        details = {"identifier": key.identifier, "name": [old, display_name]}
        record_event(account=account, action=AuditAction.KEY_RENAMED, actor=actor, details=details)
    return key
