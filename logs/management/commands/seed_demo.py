"""manage.py seed_demo: an operator, two demo accounts with members, and a week of traffic.

Safe to re-run: users and accounts are fetched or created, passwords are kept in
var/demo-logins.json so a rerun prints the same ones, and traffic goes through the real
ingest service, whose duplicate check drops request_ids already stored. A rerun only
generates the hours since the newest stored row, so it tops the demo up to "now".

Demo only: the logins file holds plain-text passwords for throwaway demo users.
"""

import json
import logging
import os
import secrets
import sys
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max
from django.utils import timezone

from console.models import Account, ApiToken, Membership
from logs.demo import DEMO_ACCOUNTS, OPERATOR_EMAIL, DemoAccount, demo_records
from logs.ingest.services import ingest_records
from logs.models import ModelPrice
from logs.selectors import request_logs

BATCH_SIZE = 1000  # the batch size a gateway sends; also keeps memory flat
API_ENTRY = "api:acme:read"  # where the demo's read token is kept in the logins file


class Command(BaseCommand):
    help = "Create demo accounts, users and a few days of realistic traffic (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, help="Days of traffic to generate (default 7).")
        parser.add_argument("--hours", type=int, default=None, help="Hours of traffic instead of --days.")
        parser.add_argument(
            "--logins-file",
            default=None,
            help="Where demo passwords are kept (default: $METERLOG_VAR_DIR/demo-logins.json).",
        )

    def handle(self, *args, days, hours, logins_file, **options):
        if days < 1 or days > 60:
            raise CommandError("--days must be between 1 and 60")
        if hours is not None and not 1 <= hours <= 24 * 60:
            raise CommandError("--hours must be between 1 and 1440")
        window = timedelta(hours=hours) if hours is not None else timedelta(days=days)
        path = logins_file or os.path.join(settings.VAR_DIR, "demo-logins.json")
        logins = _load_logins(path)
        if not ModelPrice.objects.exists():
            self.stderr.write("No model prices yet: run `manage.py sync_prices` first, or demo costs stay unpriced.")

        _ensure_user(OPERATOR_EMAIL, logins, staff=True)
        accounts = []
        for demo in DEMO_ACCOUNTS:
            account = _ensure_account(demo)
            for member in demo.members:
                user = _ensure_user(member.email, logins)
                Membership.objects.get_or_create(user=user, account=account, defaults={"role": member.role})
            accounts.append((demo, account))
        if API_ENTRY not in logins:
            _, raw = ApiToken.generate(account=accounts[0][1], scope="read", name="demo read token")
            logins[API_ENTRY] = raw
        _save_logins(path, logins)

        # One progress line per account instead of ingest's log line per batch.
        logging.getLogger("logs.ingest").setLevel(logging.WARNING)
        now = timezone.now()
        for demo, account in accounts:
            self._seed_traffic(demo, account, now=now, window=window)
        self._print_logins(logins, path)

    def _seed_traffic(self, demo: DemoAccount, account: Account, *, now, window: timedelta) -> None:
        start = now - window
        newest = request_logs(account=account).aggregate(newest=Max("timestamp"))["newest"]
        if newest is not None and newest > start:
            # Regenerate from the newest row's hour: its earlier rows come back as duplicates.
            start = newest
        accepted = duplicates = rejected = 0
        batch: list[dict] = []

        def flush():
            nonlocal accepted, duplicates, rejected, batch
            result = ingest_records(account=account, records=batch, source="demo")
            accepted += result.accepted
            duplicates += result.duplicates
            rejected += len(result.rejected)
            if result.rejected:
                self.stderr.write(f"\n{demo.slug}: rejected {result.rejected[:3]}")
            batch = []
            self._progress(f"{demo.slug}: {accepted:,} stored, {duplicates:,} already there")

        for record in demo_records(demo, start, now):
            batch.append(record)
            if len(batch) >= BATCH_SIZE:
                flush()
        if batch:
            flush()
        self._progress(
            f"{demo.slug}: {accepted:,} stored, {duplicates:,} already there, {rejected:,} rejected "
            f"({account.name}, {account.tier}, {account.timezone})",
            final=True,
        )

    def _progress(self, line: str, final: bool = False) -> None:
        # One line that updates in place on a terminal; plain lines in logs and CI.
        if self.stdout.isatty():
            self.stdout.write("\r\033[K" + line, ending="\n" if final else "")
            self.stdout.flush()
        elif final:
            self.stdout.write(line)

    def _print_logins(self, logins: dict, path: str) -> None:
        port = os.environ.get("PORT", "8000")
        out = self.stdout
        out.write("")
        out.write(f"Meterlog demo: http://127.0.0.1:{port}/   (logins saved in {path})")
        out.write(f"  {'operator (staff, sees every account):':<40}{OPERATOR_EMAIL}  /  {logins[OPERATOR_EMAIL]}")
        seen = set()
        for demo in DEMO_ACCOUNTS:
            for member in demo.members:
                if member.email in seen:
                    continue
                seen.add(member.email)
                where = ", ".join(
                    f"{d.slug} {m.role}" for d in DEMO_ACCOUNTS for m in d.members if m.email == member.email
                )
                label = f"member ({where}):"
                out.write(f"  {label:<40}{member.email}  /  {logins[member.email]}")
        out.write(
            f"  API (acme, read scope): curl -H 'Authorization: Bearer {logins[API_ENTRY]}' "
            f"http://127.0.0.1:{port}/api/v1/logs?limit=5"
        )
        sys.stdout.flush()


def _load_logins(path: str) -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc


def _save_logins(path: str, logins: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(logins, fh, indent=2, sort_keys=True)


def _ensure_user(email: str, logins: dict, staff: bool = False):
    """Fetch or create the user; its password is the saved one, or a new random one."""
    password = logins.setdefault(email, secrets.token_urlsafe(12))
    user, created = get_user_model().objects.get_or_create(
        username=email, defaults={"email": email, "is_staff": staff, "is_superuser": staff}
    )
    if created or not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


def _ensure_account(demo: DemoAccount) -> Account:
    account, _ = Account.objects.get_or_create(
        slug=demo.slug, defaults={"name": demo.name, "tier": demo.tier, "timezone": demo.timezone}
    )
    return account
