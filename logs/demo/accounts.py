"""The demo's accounts, members, API keys and models (invented; see logs/demo/__init__.py)."""

import hashlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    ttft_ms: int  # time to first token
    ms_per_token: float
    context: int
    caches: bool = True
    reasons: bool = False


MODELS = {
    m.name: m
    for m in (
        Model("gpt-4o-mini", "openai", 280, 9.0, 128_000),
        Model("gpt-4o", "openai", 450, 17.0, 128_000),
        Model("claude-3-5-sonnet-20241022", "anthropic", 650, 19.0, 200_000),
        Model("o3-mini", "openai", 1400, 7.5, 200_000, reasons=True),
        # A fine-tune served by the customer's own deployment: no list price, shown unpriced.
        Model("acme-support-ft-v3", "self-hosted", 180, 11.0, 32_000, caches=False),
    )
}


@dataclass(frozen=True)
class DemoKey:
    identifier: str
    trace: str  # which traced workload it replays: "conv" (chat) or "code" (completion)
    share: float
    models: tuple[tuple[str, float], ...]
    tags: tuple[tuple[str, str], ...]
    user_agents: tuple[str, ...]
    ips: tuple[str, ...]
    stream_ratio: float = 0.5


@dataclass(frozen=True)
class DemoMember:
    email: str
    role: str


@dataclass(frozen=True)
class DemoAccount:
    slug: str
    name: str
    tier: str
    timezone: str
    peak_per_hour: int
    keys: tuple[DemoKey, ...]
    members: tuple[DemoMember, ...]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _fake_secret(prefix: str, seed: str, length: int) -> str:
    # Looks like a provider secret so the UI shows its masked form; it is not a real key.
    digest = hashlib.sha256(seed.encode()).hexdigest() + hashlib.sha256(seed[::-1].encode()).hexdigest()
    return prefix + digest[:length]


PY_SDK = "OpenAI/Python 1.54.3"
JS_SDK = "OpenAI/JS 4.71.1"

DEMO_ACCOUNTS = (
    DemoAccount(
        slug="acme",
        name="Acme Robotics",
        tier="standard",
        timezone="UTC",
        peak_per_hour=240,
        keys=(
            DemoKey(
                "support-bot",
                "conv",
                0.45,
                (("gpt-4o-mini", 0.8), ("gpt-4o", 0.2)),
                (("team", "support"), ("env", "prod")),
                (PY_SDK,),
                ("203.0.113.10", "203.0.113.11"),
                stream_ratio=0.8,
            ),
            DemoKey(
                "code-assistant",
                "code",
                0.30,
                (("claude-3-5-sonnet-20241022", 0.7), ("gpt-4o", 0.3)),
                (("team", "devtools"), ("env", "prod")),
                (JS_SDK, "litellm/1.52.0"),
                ("203.0.113.20",),
                stream_ratio=0.95,
            ),
            DemoKey(
                _fake_secret("sk-proj-", "meterlog-demo-acme-research", 40),
                "conv",
                0.15,
                (("gpt-4o-mini", 0.6), ("gpt-4o", 0.4)),
                (("team", "research"), ("env", "dev")),
                ("python-requests/2.32.3", PY_SDK),
                ("198.51.100.7", "2001:db8:10::5"),
                stream_ratio=0.1,
            ),
            DemoKey(
                "eval-batch",
                "conv",
                0.10,
                (("acme-support-ft-v3", 1.0),),
                (("team", "ml"), ("env", "staging")),
                ("httpx/0.27.2",),
                ("10.20.0.14",),
                stream_ratio=0.0,
            ),
        ),
        members=(
            DemoMember("alice@acme.example", "owner"),
            DemoMember("carol@acme.example", "viewer"),
            DemoMember("dana@consulting.example", "viewer"),
        ),
    ),
    DemoAccount(
        slug="globex",
        name="Globex India",
        tier="professional",
        timezone="Asia/Kolkata",
        peak_per_hour=160,
        keys=(
            DemoKey(
                "mumbai-web",
                "conv",
                0.50,
                (("gpt-4o-mini", 0.6), ("claude-3-5-sonnet-20241022", 0.4)),
                (("team", "product"), ("env", "prod")),
                (JS_SDK,),
                ("192.0.2.40", "192.0.2.41", "192.0.2.42"),
                stream_ratio=0.9,
            ),
            DemoKey(
                "analytics-pipeline",
                "code",
                0.30,
                (("gpt-4o", 0.5), ("o3-mini", 0.5)),
                (("team", "analytics"), ("env", "prod")),
                ("langchain-openai/0.2.9 " + PY_SDK,),
                ("192.0.2.80",),
                stream_ratio=0.0,
            ),
            DemoKey(
                _fake_secret("sk-", "meterlog-demo-globex-ds", 48),
                "conv",
                0.20,
                (("gpt-4o-mini", 1.0),),
                (("team", "data-science"), ("env", "dev")),
                (PY_SDK,),
                ("2001:db8:20::17",),
                stream_ratio=0.3,
            ),
        ),
        members=(
            DemoMember("bob@globex.example", "owner"),
            DemoMember("dana@consulting.example", "admin"),
        ),
    ),
)

OPERATOR_EMAIL = "admin@meterlog.local"
