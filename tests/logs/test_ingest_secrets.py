"""Secrets are stored masked in every spelling, and scrubbed from request_params,
error_message and user_agent (issue "Hardening"). Through the real endpoints; the checks
read every column of the tables back from the database."""

import copy
import hashlib
import json
from pathlib import Path

import pytest
from django.db import connection

from console.models import ApiToken
from logs.models import ApiKey, RequestLog
from tests.factories import ingest_record as record

pytestmark = pytest.mark.django_db
INGEST = "/api/v1/ingest"
LITELLM = "/api/v1/ingest/litellm"
LITELLM_FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "litellm_generic_api_batch.json"

OPENAI = "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789a1b2"
# (spelling as sent, masked form stored, the secret part that must never be stored)
SPELLINGS = [
    (OPENAI, "sk-…a1b2", OPENAI),
    (f"Bearer {OPENAI}", "sk-…a1b2", OPENAI),
    (f"bearer  {OPENAI}", "sk-…a1b2", OPENAI),
    (f"BEARER {OPENAI}", "sk-…a1b2", OPENAI),
    (f" {OPENAI}", "sk-…a1b2", OPENAI),
    (f"{OPENAI} ", "sk-…a1b2", OPENAI),
    ("SK-PROJ-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789A1B2", "SK-…A1B2", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
    ("sk-ant-api03-Qwertyuiopasdfghjklzxcvbnm0123456789-x9Y8", "sk-…x9Y8", "Qwertyuiopasdfghjklzxcvbnm0123456789"),
    (
        "gsk_Gq7HkL2mN4pR6sT8vX0zB1dF3hJ5kM7nP9qS2uW4yA6cE8",
        "gsk_…6cE8",
        "Gq7HkL2mN4pR6sT8vX0zB1dF3hJ5kM7nP9qS2uW4yA6cE8",
    ),
    ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz12345678", "hf_…5678", "AbCdEfGhIjKlMnOpQrStUvWxYz12345678"),
    ("AIzaSyD4Xk9vQ2mL7nR1tY6uW3eP8oI5aS0dF2g", "AIza…dF2g", "SyD4Xk9vQ2mL7nR1tY6uW3eP8oI5aS0dF2g"),
    ("xai-Zx9Qp2Lm7Rt4Vb8Nc3Kd6Hf1Js5Wg0YeTu", "xai-…YeTu", "Zx9Qp2Lm7Rt4Vb8Nc3Kd6Hf1Js5Wg0YeTu"),
    ("Zx9Qp2Lm7Rt4Vb8Nc3Kd6Hf1Js5Wg0YeTuIo", "…TuIo", "Zx9Qp2Lm7Rt4Vb8Nc3Kd6Hf1Js5Wg0YeTuIo"),  # no prefix
]
NAMES = [
    "prod-backend",
    "team-a-key-2",
    "hf_search_team_prod",
    "production-backend-service-key-01",
    "litellm_proxy_master_key",
    "prod-key-1",
    "gpt-4o-2024-08-06",
    "550e8400-e29b-41d4-a716-446655440000",  # a dashed UUID is an identifier
    "0123456789abcdef0123456789abcde",  # 31 hex digits
    "00f067aa0ba902b7",  # a span id
    "12345678901234567890123456789012345",  # a long number
    "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef",  # hex letters only: a word, not a random key
]
# Hex-only keys of 32+ digits (Azure OpenAI's 32, SHA-1 and SHA-256 sized gateway keys,
# LiteLLM's hashed key): (as sent, stored).
HEX_KEYS = [
    ("9f3c2b1a8e7d6c5b4a39281706f5e4d3", "…e4d3"),
    ("Bearer 9F3C2B1A8E7D6C5B4A39281706F5E4D3C2B1A098", "…A098"),
    (" 2ab06cfadcdcc1bb1a1ff9edefb028084a837b3ed7b95f97e602b960ee127471 ", "…7471"),
]


@pytest.fixture
def token(acme) -> str:
    return ApiToken.generate(account=acme, scope="ingest")[1]


def post(client, token, body, url=INGEST):
    response = client.post(url, data=json.dumps(body), content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.status_code == 200, response.content
    return response.json()


def dump(*models) -> str:
    """Every column of every row of the tables, as text."""
    out = []
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"SELECT * FROM {model._meta.db_table}")
            out.append(repr(cursor.fetchall()))
    return "\n".join(out)


@pytest.mark.parametrize(("sent", "masked", "secret"), SPELLINGS, ids=[s[1] + str(i) for i, s in enumerate(SPELLINGS)])
def test_every_spelling_of_a_secret_api_key_is_stored_masked(client, acme, token, sent, masked, secret):
    assert post(client, token, [record(1, api_key=sent)])["accepted"] == 1
    assert RequestLog.objects.get(account=acme).api_key == masked
    assert ApiKey.objects.get(account=acme).identifier == masked
    stored = dump(RequestLog, ApiKey)
    assert secret not in stored and secret[:16] not in stored


def test_one_secret_in_several_spellings_is_one_key(client, acme, token):
    spellings = [OPENAI, f"Bearer {OPENAI}", f" {OPENAI} ", f"bearer {OPENAI}\t"]
    body = [record(n, api_key=spelling) for n, spelling in enumerate(spellings)]
    assert post(client, token, body)["accepted"] == 4
    assert set(RequestLog.objects.values_list("api_key", flat=True)) == {"sk-…a1b2"}
    assert ApiKey.objects.filter(account=acme).count() == 1


@pytest.mark.parametrize(("sent", "masked"), HEX_KEYS)
def test_long_hex_keys_are_stored_masked(client, acme, token, sent, masked):
    assert post(client, token, [record(1, api_key=sent)])["accepted"] == 1
    assert RequestLog.objects.get(account=acme).api_key == masked
    key = ApiKey.objects.get(account=acme)
    assert key.identifier == masked
    secret = sent.removeprefix("Bearer ").strip()
    assert key.fingerprint == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in dump(RequestLog, ApiKey) and secret[:16] not in dump(RequestLog, ApiKey)


def test_hex_keys_are_scrubbed_but_hex_identifiers_stay(client, acme, token):
    azure = HEX_KEYS[0][0]
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    params = {
        "extra_headers": {"Ocp-Apim-Subscription-Key": azure, "x-request-id": trace},
        "metadata": {
            "trace_id": trace,
            "traceId": trace,
            "prompt_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        },
        "note": f"retried with {azure}",
        "traceparent": f"00-{trace}-00f067aa0ba902b7-01",
        "run": "550e8400-e29b-41d4-a716-446655440000",
    }
    body = [record(1, status="error", error_message=f"401 from https://x.openai.azure.com/?api-key={azure}",
                   error_details={"request_id": trace, "echo": azure}, user_agent=f"gw/2 ({azure})",
                   request_params=params)]  # fmt: skip
    assert post(client, token, body)["accepted"] == 1
    row = RequestLog.objects.get(account=acme)
    assert row.request_params == {
        "extra_headers": {"Ocp-Apim-Subscription-Key": "…e4d3", "x-request-id": trace},
        "metadata": {"trace_id": trace, "traceId": trace, "prompt_sha256": params["metadata"]["prompt_sha256"]},
        "note": "retried with …e4d3",
        "traceparent": f"00-{trace}-00f067aa0ba902b7-01",
        "run": "550e8400-e29b-41d4-a716-446655440000",
    }
    assert row.error_message == "401 from https://x.openai.azure.com/?api-key=…e4d3"
    assert row.error_details == {"request_id": trace, "echo": "…e4d3"}
    assert row.user_agent == "gw/2 (…e4d3)"
    assert azure not in dump(RequestLog, ApiKey)


@pytest.mark.parametrize("name", NAMES)
def test_key_names_and_hashes_are_stored_as_sent(client, acme, token, name):
    assert post(client, token, [record(1, api_key=name)])["accepted"] == 1
    assert RequestLog.objects.get(account=acme).api_key == name
    assert ApiKey.objects.get(account=acme).identifier == name


def test_secrets_are_scrubbed_from_params_error_message_and_user_agent(client, acme, token):
    groq = SPELLINGS[8][0]
    google = SPELLINGS[10][0]
    hugging = SPELLINGS[9][0]
    generic = SPELLINGS[12][0]
    params = {
        "temperature": 0.2,
        "api_key": "whatever-it-is",  # a credential by its key, whatever it looks like
        "extra_headers": {"Authorization": f"Bearer {OPENAI}", "X-Trace": "abc"},
        "extra_body": {"note": f"routed with {groq} today", generic: "as a key"},
        "fallbacks": [{"model": "gemini", "key": google}],
        "messages": [{"role": "user", "content": "the prompt text"}],
    }
    body = [
        record(
            1,
            status="error",
            error_code="401",
            error_message=f"Incorrect API key provided: {OPENAI}. You can find your API key at https://x.",
            user_agent=f"my-app/1.0 (token={hugging}; python)",
            request_params=params,
            error_details={"headers": {"authorization": f"Bearer {OPENAI}"}, "retry": 2},
            api_key="team-a",
        )
    ]
    assert post(client, token, body)["accepted"] == 1
    row = RequestLog.objects.get(account=acme)
    assert row.error_message == "Incorrect API key provided: sk-…a1b2. You can find your API key at https://x."
    assert row.user_agent == "my-app/1.0 (token=hf_…5678; python)"
    assert row.request_params == {
        "temperature": 0.2,
        "api_key": "[redacted]",
        "extra_headers": {"Authorization": "sk-…a1b2", "X-Trace": "abc"},
        "extra_body": {"note": "routed with gsk_…6cE8 today", "…TuIo": "as a key"},
        "fallbacks": [{"model": "gemini", "key": "AIza…dF2g"}],
    }
    assert row.error_details == {"headers": {"authorization": "sk-…a1b2"}, "retry": 2}
    stored = dump(RequestLog, ApiKey)
    for secret in (OPENAI, groq, google, hugging, generic, "whatever-it-is", "the prompt text"):
        assert secret not in stored


def test_litellm_payload_secrets_are_scrubbed(client, acme, token):
    payload = json.loads(LITELLM_FIXTURE.read_text())[0]
    payload = copy.deepcopy(payload)
    payload["metadata"]["user_api_key_alias"] = f" Bearer {OPENAI}"
    payload["metadata"]["user_agent"] = f"litellm/1.52 {SPELLINGS[11][0]}"
    payload["model_parameters"] = {"temperature": 0.1, "extra_headers": {"x-api-key": SPELLINGS[8][0]}}
    payload["status"] = "failure"
    payload["error_information"] = {"error_code": "401", "error_message": f"AuthenticationError: key {OPENAI} invalid"}
    assert post(client, token, [payload], url=LITELLM)["accepted"] == 1
    row = RequestLog.objects.get(account=acme)
    assert row.api_key == "sk-…a1b2"
    assert row.user_agent == "litellm/1.52 xai-…YeTu"
    assert row.request_params == {"temperature": 0.1, "extra_headers": {"x-api-key": "gsk_…6cE8"}}
    assert row.error_message == "AuthenticationError: key sk-…a1b2 invalid"
    stored = dump(RequestLog, ApiKey)
    assert OPENAI not in stored and SPELLINGS[8][0] not in stored and SPELLINGS[11][0] not in stored


def test_masked_values_under_credential_keys_are_kept(client, acme, token):
    # What an export of scrubbed rows holds, imported again (and scrub_secrets run twice).
    params = {"api_key": "sk-…a1b2", "authorization": "…e4d3", "token": "[redacted]", "password": "…"}
    assert post(client, token, [record(1, request_params=params)])["accepted"] == 1
    assert RequestLog.objects.get(account=acme).request_params == {
        "api_key": "sk-…a1b2",
        "authorization": "…e4d3",
        "token": "[redacted]",
        "password": "[redacted]",  # not a mask: a value
    }
