"""System checks of the logs app (`manage.py check`, and every start of runserver/migrate)."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security)
def check_field_encryption_key(app_configs=None, **kwargs):
    """A FIELD_ENCRYPTION_KEY that is set but unusable is reported at start-up, not at the
    first encrypted row (an empty one is fine: no account can switch encryption on)."""
    from logs import encryption

    if not settings.FIELD_ENCRYPTION_KEY.strip():
        return []
    problem = encryption.key_problem()
    if problem is None:
        return []
    return [checks.Warning(problem, id="meterlog.W001", obj="FIELD_ENCRYPTION_KEY")]
