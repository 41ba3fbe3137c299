"""Alert webhooks: the URL check, the signing secret, the signature header and the POST.

Receivers verify a delivery like this (the README says it too):

    X-Meterlog-Signature: t=1765000000,v1=5f2c...   (hex HMAC-SHA256)
    expected = hmac_sha256(secret, f"{t}.".encode() + raw_body).hexdigest()

compare in constant time, and refuse a `t` more than a few minutes from their clock (a
replayed body carries its old timestamp, and changing it breaks the signature).
"""

import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from urllib.parse import urlsplit

import httpx2 as httpx
from django.conf import settings

SIGNATURE_HEADER = "X-Meterlog-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
# Short: a delivery runs in a worker, and a slow receiver must not hold it (retries follow).
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
USER_AGENT = "Meterlog-Alerts/1"


class WebhookURLError(ValueError):
    pass


class WebhookError(Exception):
    """A POST that did not succeed; `retry` says whether trying again can help."""

    def __init__(self, message: str, *, retry: bool = True):
        super().__init__(message)
        self.retry = retry


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def check_url(url: str, *, resolve: bool = True) -> str:
    """The URL if Meterlog may POST to it, else WebhookURLError with the reason.

    http and https only, a host, no user:password part. Unless
    METERLOG_WEBHOOK_ALLOW_PRIVATE is on (the default with DEBUG), a host that is or resolves
    to a loopback, private, link-local or otherwise non-public address is refused, so a
    console user cannot make the server call its own network (SSRF). Checked when the rule
    is saved and again before each POST."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookURLError("The webhook URL must start with http:// or https://.")
    if not parts.hostname:
        raise WebhookURLError("The webhook URL needs a host name.")
    if parts.username or parts.password:
        raise WebhookURLError("Put no user name or password in the webhook URL.")
    try:
        port = parts.port
    except ValueError:
        raise WebhookURLError("The webhook URL has an invalid port.") from None
    if settings.METERLOG_WEBHOOK_ALLOW_PRIVATE:
        return url
    host = parts.hostname
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if not resolve:
            return url
        try:
            infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
        except OSError:
            raise WebhookURLError(f"The webhook host {host!r} does not resolve.") from None
        addresses = sorted({info[4][0] for info in infos})
    if any(_private(address) for address in addresses):
        raise WebhookURLError(
            f"The webhook host {host!r} is a private or local address; "
            "an operator can allow those with METERLOG_WEBHOOK_ALLOW_PRIVATE."
        )
    return url


def signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does (and the tests): the signature matches and `t` is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp)
    return hmac.compare_digest(expected, f"t={timestamp},v1={fields.get('v1', '')}")


def post(url: str, body: bytes, secret: str) -> int:
    """POST the signed body; the HTTP status on 2xx, WebhookError otherwise. Redirects are
    not followed (a redirect could lead to an address check_url refuses)."""
    try:
        check_url(url)
    except WebhookURLError as exc:
        raise WebhookError(str(exc), retry=False) from None
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature(secret, body, int(time.time())),
    }
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        raise WebhookError(f"timed out after {TIMEOUT.read:g} s") from None
    except httpx.HTTPError as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}"[:300]) from None
    if 200 <= response.status_code < 300:
        return response.status_code
    # A client error other than timeout or rate limit will answer the same next time.
    retry = response.status_code >= 500 or response.status_code in (408, 429)
    raise WebhookError(f"HTTP {response.status_code} {response.text[:200]!r}", retry=retry)
