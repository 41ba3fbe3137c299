"""API authentication: `Authorization: Bearer <token>`, one token = one account + one scope.

401 when the token is missing or unknown, 403 when it lacks the endpoint's scope
(an ingest token on a read endpoint). Views read the account from `request.auth.account`.
"""

from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from console.models import ApiToken, TokenScope, hash_token

# Writing last_used_at on every request would turn each ingest call into an extra UPDATE.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenUser:
    """The principal behind an API token: not a Django user, only an account and a scope."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_anonymous = False

    def __init__(self, token: ApiToken):
        self.token = token
        self.account = token.account

    def __str__(self) -> str:
        return f"token {self.token.hint}…"


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Token contains invalid characters.") from exc
        token = ApiToken.objects.active().select_related("account").filter(token_hash=hash_token(raw)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return TokenUser(token), token

    def authenticate_header(self, request):
        return 'Bearer realm="meterlog"'


class _ScopePermission(BasePermission):
    scope: str = ""
    message = ""

    def has_permission(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken):
            # No credentials at all: DRF turns this into a 401 with WWW-Authenticate.
            raise exceptions.NotAuthenticated("Send 'Authorization: Bearer <token>'.")
        if token.scope != self.scope:
            raise exceptions.PermissionDenied(f"This endpoint needs a token with the '{self.scope}' scope.")
        return True


class HasIngestScope(_ScopePermission):
    scope = TokenScope.INGEST


class HasReadScope(_ScopePermission):
    scope = TokenScope.READ
