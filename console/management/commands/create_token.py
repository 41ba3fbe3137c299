"""manage.py create_token SLUG --scope ingest|read [--name N]

The raw token is printed alone on the last line of stdout (scripts take `tail -n 1`);
it is stored hashed and cannot be shown again.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from console.management.commands.create_account import validation_message
from console.models import Account, TokenScope
from console.services import token_create


def get_account(slug: str) -> Account:
    account = Account.objects.filter(slug=slug).first()
    if account is None:
        raise CommandError(f"No account with the slug {slug!r}.")
    return account


class Command(BaseCommand):
    help = "Create an API token for an account and print it (once)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--scope", required=True, help=f"one of: {', '.join(TokenScope.values)}")
        parser.add_argument("--name", default="")

    def handle(self, *args, **options):
        account = get_account(options["slug"])
        try:
            token, raw = token_create(account=account, scope=options["scope"], name=options["name"])
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        self.stdout.write(
            f"Created {token.scope} token {token.hint}… for {account.slug}. Store it now, it is shown once:"
        )
        self.stdout.write(raw)
