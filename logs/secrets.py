"""Recognising provider secrets, and what is stored instead of them.

A secret (an API key a gateway forwarded by mistake) is never stored: the api_key column
holds its masked form and ApiKey a fingerprint; inside request_params, error_message and
user_agent it is replaced by the masked form. Recognised, after trimming and an optional
`Bearer ` prefix (any case), with the prefix in any case:

- provider prefixes: OpenAI sk- / sk-proj-, Anthropic sk-ant-, Stripe-style sk_/rk_/pk_,
  key-, Groq gsk_, Hugging Face hf_, xAI xai-, Google AIza;
- any other token of 32+ characters of a base64/URL-safe alphabet with upper case, lower
  case and digits and a run of 24+ without separators: random tokens look like that, key
  *names* ("prod-backend", "team-a-key-2") do not;
- a token of 32+ hex digits alone, with a digit and a letter (Azure OpenAI's 32, 40- and
  64-character gateway keys; LiteLLM's hashed key too, which cannot be told from them).
  Dashed UUIDs, trace ids inside a traceparent and shorter hex (span ids, short commit
  hashes) are not hex tokens and stay; so do long numbers. Inside request_params and
  error_details a hex string under a key naming an identifier or a digest (`id`,
  `request_id`, `traceId`, `sha256`, `etag`, ...) stays too: a request id is not a key.
"""

import hashlib
import re

# The families masked from the start need only 16 body characters (their masks, "sk-…a1b2",
# must not change, or a key seen before and after would be listed twice). The newer ones
# need a digit or a capital in the body, so "hf_search_team_prod" stays a key name.
_LEGACY = frozenset({"sk-", "sk_", "rk-", "rk_", "pk-", "pk_", "key-", "key_"})
_NEWER = frozenset({"gsk_", "hf_", "xai-"})
_BODY_MIN = 16
_AIZA_BODY_MIN = 30  # Google keys are AIza + 35
_PREFIX = re.compile(r"aiza|[a-z]{2,3}[-_]", re.IGNORECASE)
_BODY = re.compile(r"[A-Za-z0-9_\-]+")
# Candidates in free text: a prefixed token not glued to a word before it; a long token.
_PREFIXED_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9])(?:aiza|sk[-_]|rk[-_]|pk[-_]|key[-_]|gsk_|hf_|xai-)[A-Za-z0-9_\-]{16,}", re.IGNORECASE
)
_LONG_IN_TEXT = re.compile(r"(?<![A-Za-z0-9+/_.\-])[A-Za-z0-9+/_.\-]{32,}={0,2}")
_RUN = re.compile(r"[A-Za-z0-9+]{24,}")
_HEX = re.compile(r"(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{32,}", re.IGNORECASE)
# JSON keys whose hex strings are identifiers or digests, not keys: "id", "request_id",
# "x-request-id", "trace.id", "sha256", "etag"; camelCase "traceId", "contentHash".
_ID_KEY = re.compile(r"(?:^|[_\-. ])(?:id|uuid|guid|hash|digest|checksum|sha1|sha256|md5|etag)$", re.IGNORECASE)
_ID_KEY_CAMEL = re.compile(r"[a-z](?:Id|ID|Uuid|Hash|Digest)$")
_BEARER = re.compile(r"bearer\s+", re.IGNORECASE)
GENERIC_MIN = 32
MASK = "…"
# Keys inside request_params whose string value is a credential whatever it looks like.
CREDENTIAL_KEYS = frozenset(
    {"api_key", "apikey", "api-key", "x-api-key", "authorization", "proxy-authorization", "access_token",
     "token", "auth_token", "secret", "client_secret", "password", "x-goog-api-key", "openai_api_key"}
)  # fmt: skip
REDACTED = "[redacted]"
# What mask_secret writes: kept as it is under a credential key, so scrubbing a stored or
# re-imported value again changes nothing (scrub_secrets runs twice without a change).
_MASKED = re.compile(r"(?:aiza|[a-z]{2,3}[-_])?…[A-Za-z0-9+/_.=\-]{4}", re.IGNORECASE)


def _prefix_of(token: str, *, in_text: bool = False) -> str | None:
    """The provider prefix as sent ("sk-", "AIza", ...) when `token` is a prefixed secret.
    In free text every family needs a digit or a capital: "key-value-store-option" is prose."""
    match = _PREFIX.match(token)
    if match is None:
        return None
    prefix = match.group()
    body = token[match.end() :]
    if not _BODY.fullmatch(body):
        return None
    folded = prefix.lower()
    if folded == "aiza":
        return prefix if len(body) >= _AIZA_BODY_MIN else None
    if folded in _LEGACY and not in_text:
        return prefix if len(body) >= _BODY_MIN else None
    strong = any(c.isdigit() or c.isupper() for c in body)
    if (folded in _NEWER or folded in _LEGACY) and len(body) >= _BODY_MIN and strong:
        return prefix
    return None


def _is_generic(token: str) -> bool:
    if len(token) < GENERIC_MIN or not _RUN.search(token):
        return False
    return any(c.isupper() for c in token) and any(c.islower() for c in token) and any(c.isdigit() for c in token)


def _mask_token(token: str, *, in_text: bool = False, hex_ok: bool = False) -> str | None:
    """The masked form of `token` (trimmed, without Bearer), or None when it is no secret;
    `hex_ok`: a hex token is an identifier here (under an id or digest key)."""
    prefix = _prefix_of(token, in_text=in_text)
    if prefix is not None:
        return f"{prefix}{MASK}{token[-4:]}"
    if _is_generic(token) and _LONG_IN_TEXT.fullmatch(token):
        return f"{MASK}{token[-4:]}"
    if not hex_ok and _HEX.fullmatch(token):
        return f"{MASK}{token[-4:]}"
    return None


def normalize(value: str) -> str:
    """The value as a secret is compared: trimmed, without a `Bearer ` prefix."""
    text = value.strip()
    match = _BEARER.match(text)
    return text[match.end() :].strip() if match else text


def looks_like_secret(value: str) -> bool:
    return _mask_token(normalize(value)) is not None


def mask_secret(value: str) -> str:
    """sk-…a1b2, gsk_…a1b2, AIza…a1b2, or …a1b2 for a secret without a known prefix."""
    token = normalize(value)
    return _mask_token(token) or f"{MASK}{token[-4:]}"


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def key_fingerprint(raw: str) -> str:
    """A secret's fingerprint ignores its spelling (spaces, Bearer), so its records group
    under one ApiKey; any other identifier is fingerprinted as sent (as before)."""
    return fingerprint(normalize(raw) if looks_like_secret(raw) else raw)


def _mask_match(match: re.Match, hex_ok: bool = False) -> str:
    token = match.group()
    return _mask_token(token, in_text=True, hex_ok=hex_ok) or token


def _mask_match_hex_ok(match: re.Match) -> str:
    return _mask_match(match, hex_ok=True)


def is_identifier_key(key: str) -> bool:
    """A JSON key whose hex values are identifiers or digests (request_id, traceId, sha256)."""
    return bool(_ID_KEY.search(key) or _ID_KEY_CAMEL.search(key))


def scrub_text(text: str, *, hex_ok: bool = False) -> str:
    """`text` with every secret in it replaced by its masked form; with `hex_ok` hex tokens
    are left as they are (the text is an identifier's value)."""
    if len(text) < _BODY_MIN:
        return text
    long_mask = _mask_match_hex_ok if hex_ok else _mask_match
    return _LONG_IN_TEXT.sub(long_mask, _PREFIXED_IN_TEXT.sub(_mask_match, text))


def scrub_json(value, key: str | None = None):
    """A copy of a JSON value with secrets masked in every string (object keys too); a string
    under a credential key (api_key, authorization, ...) is masked or redacted whatever it is."""
    if isinstance(value, str):
        if key is not None and key.lower() in CREDENTIAL_KEYS and value.strip():
            if _MASKED.fullmatch(value) or value == REDACTED:
                return value
            return mask_secret(value) if looks_like_secret(value) else REDACTED
        return scrub_text(value, hex_ok=key is not None and is_identifier_key(key))
    if isinstance(value, dict):
        return {
            (scrub_text(k) if isinstance(k, str) else k): scrub_json(v, k if isinstance(k, str) else None)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub_json(v, key) for v in value]
    return value
