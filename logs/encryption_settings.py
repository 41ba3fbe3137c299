"""The log encryption switch of an account (owners, /settings/encryption/) and what the
readers need to know about it. The Fernet work is in logs.encryption.

Switching on needs usable keys in FIELD_ENCRYPTION_KEY: without them the switch is refused
(a form error), never stored. Switching off needs none; rows stored encrypted stay encrypted
and still need their key to be read. Every switch is in the account's access log.
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from console.audit import Actor, record_event
from console.models import Account, AuditAction
from logs import encryption


def may_have_encrypted_rows(account: Account | None) -> bool:
    """Whether any of the account's rows may be stored encrypted: encryption is on, or was
    on once (every switch on is in the access log: one indexed EXISTS, not a scan of the
    log). None (an unknown account) answers True, the safe side."""
    if account is None or account.encryption_enabled:
        return True
    return account.audit_events.filter(action=AuditAction.ENCRYPTION_ON).exists()


@transaction.atomic
def set_encryption(*, account: Account, enabled: bool, actor: Actor | None = None) -> bool:
    """Switch log encryption; returns whether it changed. Ingest reads the flag per batch:
    records received from the commit on are stored encrypted (or plain again); stored rows
    are not rewritten. ValidationError when switching on without usable keys. Locked, as
    console.services.account_set_privacy_mode, so two owners switching at once log one change."""
    if enabled:
        problem = encryption.key_problem()
        if problem is not None:
            raise ValidationError(f"Log encryption cannot be switched on: {problem}")
    stored = Account.objects.select_for_update().get(pk=account.pk)
    account.encryption_enabled = enabled
    if stored.encryption_enabled == enabled:
        return False
    Account.objects.filter(pk=account.pk).update(encryption_enabled=enabled)
    action = AuditAction.ENCRYPTION_ON if enabled else AuditAction.ENCRYPTION_OFF
    details = {"fields": ", ".join(encryption.ENCRYPTED_FIELDS)}
    record_event(account=account, action=action, actor=actor, details=details)
    return True
