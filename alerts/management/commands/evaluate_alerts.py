"""manage.py evaluate_alerts [--account SLUG]: one evaluation pass now, over every enabled
rule (due or not), printing each rule that fired or recovered."""

from django.core.management.base import BaseCommand, CommandError

from alerts.evaluation import evaluate_rules
from console.models import Account


class Command(BaseCommand):
    help = "Evaluate the alert rules now and print each rule that fired or recovered."

    def add_arguments(self, parser):
        parser.add_argument("--account", metavar="SLUG", help="Only this account's rules.")

    def handle(self, *args, account=None, **options):
        scope = None
        if account:
            scope = Account.objects.filter(slug=account).first()
            if scope is None:
                raise CommandError(f"no account with slug {account!r}")
        outcomes = evaluate_rules(account=scope, force=True)
        changed = 0
        for outcome in outcomes:
            event = outcome.event
            if event is None:
                continue
            changed += 1
            scope_text = ", ".join(f"{k}={v}" for k, v in (("model", event.model), ("api_key", event.api_key)) if v)
            self.stdout.write(
                f"{outcome.rule.account.slug}: {event.state.upper()} {event.kind} (rule {outcome.rule.pk}"
                f"{', ' + scope_text if scope_text else ''}) value {event.value} threshold {event.threshold}"
                f"{'' if event.notified else ' [not notified]'} - {outcome.verdict.detail}"
            )
        self.stdout.write(f"{len(outcomes)} rules evaluated, {changed} fired or recovered.")
