"""Who may do what (issue 15), as one table: every console URL and method against six kinds of
visitor, with the exact status and, for a POST, whether the account changed.

Roles: anonymous; viewer, admin, owner (members of acme); operator (staff, no membership: reads
any account as a viewer, plus the operator pages); outsider (owner of globex only: acts on
globex, never reaches acme's objects). A URL pattern missing from CASES fails
test_every_url_pattern_is_classified, so each new page has to be put in the table.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from alerts.models import AlertRule, ReportSubscription, SentReport
from alerts.models import Delivery as AlertDelivery
from alerts.reports.email import unsubscribe_token
from console.models import ApiToken, AuditAction, AuditEvent, Membership
from logs.deletions.models import DeletionRequest
from logs.models import PRICE_FLOOR, ApiKey, ExportRecord, ImportJob, ModelPrice, RequestLog
from tests.factories import ingest_record, make_account, make_log, make_user

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "viewer", "admin", "owner", "operator", "outsider")
LOGIN = "login"  # 302 to the login page, with ?next=
ADMIN_LOGIN = "admin-login"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "imports"
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 2, tzinfo=UTC)


def everyone(status: int) -> dict:
    return dict.fromkeys(ROLES, status)


def members(ok: int = 200, *, outsider: int | None = None) -> dict:
    """Any member (and an operator, as a viewer); the outsider gets its own account's page
    (`ok`) or, for one of acme's objects, 404."""
    return {"anonymous": LOGIN, "viewer": ok, "admin": ok, "owner": ok, "operator": ok, "outsider": outsider or ok}


def admins(ok: int = 200, *, outsider: int | None = None) -> dict:
    return members(ok, outsider=outsider) | {"viewer": 403, "operator": 403}


def owners(ok: int = 200, *, outsider: int | None = None) -> dict:
    return admins(ok, outsider=outsider) | {"admin": 403}


def operators(ok: int = 200) -> dict:
    return {"anonymous": LOGIN, "viewer": 403, "admin": 403, "owner": 403, "operator": ok, "outsider": 403}


def api(status: int = 401) -> dict:
    """The API authenticates by bearer token only: a console session is no credential."""
    return everyone(status)


@dataclass(frozen=True)
class Case:
    name: str  # URL name
    method: str
    expect: dict  # role -> status
    what: str  # for the table in the README
    args: tuple = ()  # attribute names of the `world` fixture
    query: str = ""
    data: dict = field(default_factory=dict)
    # The acme state a POST changes: it must differ after an allowed role's request on acme,
    # and be equal after any other (a refused request, or the outsider's on globex).
    state: object = None
    files: bool = False

    @property
    def id(self) -> str:
        return f"{self.method} {self.name}"


def _privacy(w):
    w.acme.refresh_from_db()
    return w.acme.privacy_mode


def _name(w):
    w.acme.refresh_from_db()
    return w.acme.name


CASES = [
    # --- Django's login pages -----------------------------------------------------------------
    Case("login", "GET", everyone(200), "log in"),
    Case("logout", "POST", everyone(302), "log out"),
    Case("password_change", "GET", members(), "change one's own password"),
    Case("password_change_done", "GET", members(), "password changed"),
    Case("password_reset", "GET", everyone(200), "ask for a password reset mail"),
    Case("password_reset_done", "GET", everyone(200), "reset mail sent"),
    Case("password_reset_confirm", "GET", everyone(200), "reset link (here: an invalid one)", ("uid", "reset_token")),
    Case("password_reset_complete", "GET", everyone(200), "password reset"),
    # --- Browse ---------------------------------------------------------------------------------
    Case("console:home", "GET", members(), "dashboard"),
    Case("console:no_account", "GET", members(302), "no account yet (members are sent on to the log)"),
    Case("console:switch_account", "POST", members(302, outsider=403), "switch account", data={"account": "acme"}),
    Case("console:zone_choice", "POST", members(302), "choose the zone of times (topbar)", data={"choice": "account"}),
    Case("logs:list", "GET", members(), "log list"),
    Case("logs:detail", "GET", members(outsider=404), "one log record", ("request_id",)),
    Case("logs:keys", "GET", members(), "API keys and their use"),
    Case("logs:pricing", "GET", members(), "price list"),
    Case("analytics:page", "GET", members(), "analytics charts (and their CSV)"),
    Case("logs:retention", "GET", members(), "the account's retention"),
    # --- Export ---------------------------------------------------------------------------------
    Case(
        "logs:export",
        "GET",
        members(),
        "export the filtered log (logged)",
        query="?format=csv",
        state=lambda w: AuditEvent.objects.filter(account=w.acme, action=AuditAction.EXPORT_CREATED).count(),
    ),
    Case("logs:exports", "GET", members(), "exports (owners: all of the account; others: their own)"),
    # The export was started by the owner: other members do not see it.
    Case(
        "logs:export_progress",
        "GET",
        owners(200, outsider=404) | {"viewer": 404, "admin": 404, "operator": 404},
        "an export job's progress",
        ("export_id",),
    ),
    Case(
        "logs:export_download",
        "GET",
        owners(409, outsider=404) | {"viewer": 404, "admin": 404, "operator": 404},
        "an export job's file (here: still queued)",
        ("export_id",),
    ),
    # --- Owner: the account's own price of a model (issue 17) ---------------------------------
    Case(
        "logs:price_set",
        "POST",
        owners(302),
        "set the account's own price of a model (logged)",
        data={"model": "acme-custom", "input_per_mtok": "9", "output_per_mtok": "9"},
        state=lambda w: list(ModelPrice.objects.filter(account=w.acme).values_list("input_per_mtok", flat=True)),
    ),
    Case(
        "logs:price_remove",
        "POST",
        owners(302, outsider=404),
        "remove the account's own price of a model (logged)",
        data={"model": "acme-custom"},
        state=lambda w: ModelPrice.objects.filter(account=w.acme).count(),
    ),
    # --- Admin: name API keys -------------------------------------------------------------------
    Case(
        "logs:key_name",
        "POST",
        admins(302, outsider=404),
        "name an API key (logged)",
        ("key_id",),
        data={"display_name": "Team A"},
        state=lambda w: ApiKey.objects.get(pk=w.key_id).display_name,
    ),
    # --- Alerts (issue 16): members read the list; admins and owners change rules -------------
    Case("alerts:list", "GET", members(), "alert rules, their state and the event history"),
    Case("alerts:new", "GET", admins(), "the new rule form"),
    Case(
        "alerts:new",
        "POST",
        admins(302),
        "create an alert rule (logged)",
        data={"kind": "budget", "budget_amount": "10", "budget_period": "daily", "cooldown_minutes": "60"},
        state=lambda w: AlertRule.objects.filter(account=w.acme).count(),
    ),
    Case("alerts:edit", "GET", admins(outsider=404), "a rule's form and its backtest", ("rule_id",)),
    Case(
        "alerts:edit",
        "POST",
        admins(302, outsider=404),
        "change an alert rule (logged)",
        ("rule_id",),
        data={"name": "Renamed", "budget_amount": "10", "budget_period": "daily", "cooldown_minutes": "60"},
        state=lambda w: AlertRule.objects.get(pk=w.rule_id).name,
    ),
    Case(
        "alerts:test",
        "POST",
        admins(302, outsider=404),
        "send a test notification to a channel",
        ("rule_id", "email_channel"),
        state=lambda w: AlertDelivery.objects.filter(account=w.acme).count(),
    ),
    Case(
        "alerts:delete",
        "POST",
        admins(302, outsider=404),
        "delete an alert rule (logged)",
        ("rule_id",),
        state=lambda w: AlertRule.objects.filter(pk=w.rule_id).exists(),
    ),
    # --- Owner ----------------------------------------------------------------------------------
    Case("console:settings", "GET", owners(), "account settings"),
    Case(
        "console:settings",
        "POST",
        owners(302),
        "change name and time zone (logged)",
        data={"name": "Renamed", "timezone": "Europe/Berlin"},
        state=_name,
    ),
    Case(
        "console:settings_privacy",
        "POST",
        owners(302),
        "privacy mode (logged)",
        data={"privacy_mode": "on"},
        state=_privacy,
    ),
    # Switching it (POST, owners only, needs a key) is tested in tests/logs/test_encryption.py.
    Case("logs:settings_encryption", "GET", owners(), "log encryption: what is encrypted, the switch"),
    Case("console:settings_access_log", "GET", owners(), "read the access log"),
    Case("console:settings_tokens", "GET", owners(), "API tokens"),
    Case(
        "console:settings_token_create",
        "POST",
        owners(200),
        "create an API token (logged)",
        data={"scope": "read", "name": "ci"},
        state=lambda w: ApiToken.objects.filter(account=w.acme).count(),
    ),
    Case(
        "console:settings_token_revoke",
        "POST",
        owners(302, outsider=404),
        "revoke an API token (logged)",
        ("token_id",),
        state=lambda w: ApiToken.objects.get(pk=w.token_id).revoked_at is None,
    ),
    Case("console:settings_members", "GET", owners(), "members"),
    Case(
        "console:settings_member_add",
        "POST",
        owners(302),
        "add a member (logged)",
        data={"email": "new@example.test", "password": "a-long-pass-for-tests-9", "role": "viewer"},
        state=lambda w: Membership.objects.filter(account=w.acme).count(),
    ),
    Case(
        "console:settings_member_role",
        "POST",
        owners(302, outsider=404),
        "change a member's role (logged)",
        ("victor_membership",),
        data={"role": "admin"},
        state=lambda w: Membership.objects.get(pk=w.victor_membership).role,
    ),
    Case(
        "console:settings_member_remove",
        "POST",
        owners(302, outsider=404),
        "remove a member (logged)",
        ("victor_membership",),
        state=lambda w: Membership.objects.filter(pk=w.victor_membership).exists(),
    ),
    Case("logs:deletions", "GET", owners(), "deletion requests"),
    Case(
        "logs:deletions",
        "POST",
        owners(302),
        "file a deletion request (logged)",
        data={"start": "2026-11-01T00:00", "end": "2026-11-02T00:00", "reason": "erasure"},
        state=lambda w: DeletionRequest.objects.filter(account=w.acme).count(),
    ),
    Case("logs:deletion_detail", "GET", owners(outsider=404), "one deletion request and its trail", ("deletion_id",)),
    # Imports: the issue does not say; owners, as before (an import adds rows to the log).
    Case("logs:imports", "GET", owners(), "imports"),
    Case(
        "logs:imports",
        "POST",
        owners(302),
        "upload a file to import",
        data={"format": "auto"},
        files=True,
        state=lambda w: ImportJob.objects.filter(account=w.acme).count(),
    ),
    Case("logs:import_detail", "GET", owners(outsider=404), "one import", ("import_id",)),
    Case("logs:import_progress", "GET", owners(outsider=404), "an import's progress", ("import_id",)),
    # --- Reports (issue 16): one's own subscriptions; the account's sent reports --------------
    Case("reports:index", "GET", members(), "report subscriptions and sent reports"),
    Case(
        "reports:subscribe",
        "POST",
        members(302) | {"operator": 403},
        "subscribe to a report mail (members only: an operator is not one)",
        data={"frequency": "daily", "hour": "8"},
        state=lambda w: ReportSubscription.objects.filter(account=w.acme).count(),
    ),
    Case(
        "reports:subscription_remove",
        "POST",
        owners(302, outsider=404) | {"viewer": 404, "admin": 404, "operator": 404},
        "remove one's own report subscription (here: the owner's)",
        ("subscription_id",),
        state=lambda w: ReportSubscription.objects.filter(pk=w.subscription_id).exists(),
    ),
    Case("reports:sent", "GET", members(outsider=404), "a sent report as it was sent", ("sent_report_id",)),
    Case("reports:generate", "GET", members(), "generate a report for any range (page, CSV)"),
    Case("reports:generate_pdf", "GET", members(), "the generated report as PDF"),
    Case(
        "reports:open",
        "GET",
        members(302, outsider=404),
        "a report mail's console link: opens the report's account",
        query="?account=acme&next=/analytics/",
    ),
    # The signed token is the credential (a mail's link works logged out).
    Case("reports:unsubscribe", "GET", everyone(200), "unsubscribe link: asks", ("unsubscribe_token",)),
    Case("reports:unsubscribe", "POST", everyone(200), "unsubscribe link: turns it off", ("unsubscribe_token",)),
    # --- Operator (staff) -----------------------------------------------------------------------
    Case("dashboard:operator", "GET", operators(), "all accounts"),
    Case("dashboard:operator_csv", "GET", operators(), "all accounts as CSV"),
    Case("logs:retention_operator", "GET", operators(), "every account's retention and the purge runs"),
    Case("logs:deletions_operator", "GET", operators(), "pending deletion requests"),
    Case(
        "logs:deletion_decide",
        "POST",
        operators(302),
        "approve or reject a deletion request (logged)",
        ("deletion_id",),
        data={"decision": "approve", "note": "checked"},
        state=lambda w: DeletionRequest.objects.get(pk=w.deletion_id).status,
    ),
    # --- API (bearer tokens only: see test_api_token_scopes) ----------------------------------
    Case("api:ingest", "POST", api(), "send records (ingest token)", state=lambda w: RequestLog.objects.count()),
    Case(
        "api:ingest-litellm",
        "POST",
        api(),
        "send LiteLLM records (ingest token)",
        state=lambda w: RequestLog.objects.count(),
    ),
    Case("api:log-list", "GET", api(), "query the log (read token)"),
    Case("api:log-detail", "GET", api(), "one record (read token)", ("request_id",)),
    Case("api:export", "GET", api(), "export (read token, logged)"),
    Case("api:usage", "GET", api(), "usage figures (read token)"),
    Case("api:alert-events", "GET", api(), "alert events (read token)"),
    Case("api:schema", "GET", everyone(200), "OpenAPI schema (public, no data)"),
    Case("api:docs", "GET", everyone(200), "API docs (public, no data)"),
]


@pytest.fixture
def world(client, settings, tmp_path):
    settings.METERLOG_IMPORT_DIR = tmp_path / "imports"
    acme = make_account("acme", name="Acme Corp")
    globex = make_account("globex", name="Globex")
    users = {
        "viewer": make_user("charlie@acme.test", account=acme, role="viewer"),
        "admin": make_user("adam@acme.test", account=acme, role="admin"),
        "owner": make_user("alice@acme.test", account=acme, role="owner"),
        "outsider": make_user("bob@globex.test", account=globex, role="owner"),
        "operator": get_user_model().objects.create_user(username="olivia@operator.test", is_staff=True),
    }
    victor = make_user("victor@acme.test", account=acme, role="viewer")
    make_log(acme, request_id="acme-row", api_key="team-a")
    key = ApiKey.objects.create(
        account=acme, identifier="team-a", fingerprint="f" * 64, first_seen=START, last_seen=START
    )
    token, _ = ApiToken.generate(account=acme, scope="ingest", name="gateway")
    ModelPrice.objects.create(
        account=acme, model="acme-custom", input_per_mtok=1, output_per_mtok=2, valid_from=PRICE_FLOOR, source="account"
    )
    export = ExportRecord.objects.create(account=acme, user=users["owner"], format="csv", state="queued")
    job = ImportJob.objects.create(account=acme, user=users["owner"], format="auto", file_name="a.csv", state="done")
    rule = AlertRule.objects.create(account=acme, kind="budget", name="Budget", params={"amount": 10})
    deletion = DeletionRequest.objects.create(
        account=acme, filed_by=users["owner"], reason="erasure", start=START, end=END
    )
    subscription = ReportSubscription.objects.create(account=acme, user=users["owner"], frequency="weekly")
    sent_report = SentReport.objects.create(
        account=acme, frequency="weekly", period_start=START.date(), period_end=END.date(), subject="r", html="<p>r</p>"
    )
    return SimpleNamespace(
        acme=acme,
        globex=globex,
        users=users,
        request_id="acme-row",
        key_id=key.pk,
        token_id=token.pk,
        export_id=export.pk,
        import_id=job.pk,
        deletion_id=deletion.pk,
        rule_id=rule.pk,
        email_channel="email",
        subscription_id=subscription.pk,
        sent_report_id=sent_report.pk,
        unsubscribe_token=unsubscribe_token(subscription),
        victor_membership=Membership.objects.get(user=victor).pk,
        uid="MQ",
        reset_token="bad-token",
    )


def _request(client, world, case: Case):
    url = reverse(case.name, args=[getattr(world, name) for name in case.args]) + case.query
    data = {key: (world.acme.pk if value == "acme" else value) for key, value in case.data.items()}
    if case.files:
        data["file"] = SimpleUploadedFile("logs.ndjson", (FIXTURES / "meterlog_export.ndjson").read_bytes())
    if case.method == "GET":
        return url, client.get(url)
    return url, client.post(url, data)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_role_matrix(client, world, case, role):
    if role != "anonymous":
        client.force_login(world.users[role])
    before = case.state(world) if case.state else None
    url, response = _request(client, world, case)
    expected = case.expect[role]
    if expected == LOGIN:
        assert response.status_code == 302, (url, response.status_code)
        assert response["Location"].startswith("/accounts/login/?next="), response["Location"]
    else:
        assert response.status_code == expected, (url, role, response.status_code)
    if case.state is None:
        return
    acts_on_acme = isinstance(expected, int) and expected < 400 and role not in ("anonymous", "outsider")
    after = case.state(world)
    if acts_on_acme and case.name.startswith(("console:", "logs:", "alerts:", "reports:")):
        assert after != before, f"{role} was allowed but nothing changed"
    else:
        assert after == before, f"{role} was refused (or acted elsewhere) but acme changed"


def test_key_name_is_logged_with_old_and_new_name(client, world):
    client.force_login(world.users["admin"])
    client.post(reverse("logs:key_name", args=[world.key_id]), {"display_name": "  Team A "})
    client.post(reverse("logs:key_name", args=[world.key_id]), {"display_name": "Team A"})  # no change, no event
    event = AuditEvent.objects.get(account=world.acme, action=AuditAction.KEY_RENAMED)
    assert (event.username, event.details) == ("adam@acme.test", {"identifier": "team-a", "name": ["", "Team A"]})
    assert ApiKey.objects.get(pk=world.key_id).display_name == "Team A"
    client.force_login(world.users["owner"])
    page = client.get(reverse("console:settings_access_log")).content.decode()
    assert "API key named" in page and "team-a: “” → “Team A”" in page
    client.force_login(world.users["admin"])
    response = client.post(reverse("logs:key_name", args=[world.key_id]), {"display_name": "x" * 201})
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=world.key_id).display_name == "Team A"


def test_the_keys_page_offers_the_name_form_to_admins_only(client, world):
    form = reverse("logs:key_name", args=[world.key_id])
    shown = {}
    for role in ("viewer", "admin", "owner", "operator"):
        client.force_login(world.users[role])
        shown[role] = form in client.get(reverse("logs:keys")).content.decode()
    assert shown == {"viewer": False, "admin": True, "owner": True, "operator": False}


# --- API tokens: the scope decides ------------------------------------------------------------

API_READS = ["api:log-list", "api:log-detail", "api:export", "api:usage", "api:alert-events"]


@pytest.mark.parametrize("name", API_READS)
@pytest.mark.parametrize(("token", "status"), [(None, 401), ("ingest", 403), ("read", 200), ("revoked", 401)])
def test_api_token_scopes_on_reads(client, world, name, token, status):
    headers = _bearer(world.acme, token)
    args = [world.request_id] if name == "api:log-detail" else []
    response = client.get(reverse(name, args=args), **headers)
    assert response.status_code == status, response.content[:300]


@pytest.mark.parametrize(
    ("token", "status", "stored"), [(None, 401, 0), ("read", 403, 0), ("ingest", 200, 1), ("revoked", 401, 0)]
)
def test_api_token_scopes_on_ingest(client, world, token, status, stored):
    before = RequestLog.objects.count()
    response = client.post(
        reverse("api:ingest"), [ingest_record(1)], content_type="application/json", **_bearer(world.acme, token)
    )
    assert response.status_code == status, response.content[:300]
    assert RequestLog.objects.count() - before == stored


def test_a_read_token_sees_only_its_account(client, world):
    headers = _bearer(world.globex, "read")
    assert client.get(reverse("api:log-detail", args=[world.request_id]), **headers).status_code == 404
    assert client.get(reverse("api:log-list"), **headers).json()["results"] == []


def _bearer(account, kind) -> dict:
    if kind is None:
        return {}
    token, raw = ApiToken.generate(account=account, scope="read" if kind == "revoked" else kind)
    if kind == "revoked":
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=datetime.now(UTC) - timedelta(minutes=1))
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


# --- Every page is in the table ---------------------------------------------------------------


def _patterns(resolvers, prefix="", namespace=""):
    for item in resolvers:
        if isinstance(item, URLResolver):
            inner = f"{namespace}{item.namespace}:" if item.namespace else namespace
            yield from _patterns(item.url_patterns, prefix + str(item.pattern), inner)
        elif isinstance(item, URLPattern):
            yield prefix + str(item.pattern), f"{namespace}{item.name}" if item.name else ""


def test_every_url_pattern_is_classified():
    classified = {case.name for case in CASES}
    missing = [
        (route, name)
        for route, name in _patterns(get_resolver().url_patterns)
        if not route.startswith("admin/") and name not in classified
    ]
    assert missing == [], "Add these URLs to CASES in tests/console/test_roles.py (who may use them?)"


# --- The Django admin: staff only, every page ------------------------------------------------

ADMIN_ROUTES = sorted({route for route, _ in _patterns(get_resolver().url_patterns) if route.startswith("admin/")})


@pytest.mark.parametrize("route", ADMIN_ROUTES)
def test_the_admin_is_for_staff_only(client, world, route):
    url = re.sub(r"\(\?P<app_label>[^)]*\)", "console", route)  # the app index (a regex)
    url = re.sub(r"\(\?P<url>[^)]*\)", "nothing/", url)  # the catch-all
    url = "/" + re.sub(r"<[^>]+>", "1", url).replace("^", "").replace("$", "")
    for role in ("anonymous", "viewer", "owner", "outsider"):
        client.logout()
        if role != "anonymous":
            client.force_login(world.users[role])
        response = client.post(url) if route == "admin/logout/" else client.get(url)
        if route == "admin/login/":
            # The form itself, for a member too ("not authorized for this page").
            assert response.status_code == 200
        elif route == "admin/logout/":
            assert response.status_code in (200, 302)
        else:
            assert response.status_code == 302, (url, role, response.status_code)
            assert response["Location"].startswith("/admin/login/?next="), (url, response["Location"])
