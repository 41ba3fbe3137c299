"""manage.py create_member SLUG EMAIL --password PW --role owner|admin|viewer

The email is the login name. An existing user is added to the account (or gets the new
role) and keeps their password.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from console.management.commands.create_account import validation_message
from console.management.commands.create_token import get_account
from console.models import Role
from console.services import member_add


class Command(BaseCommand):
    help = "Add a member (a login) to an account."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--password", required=True)
        parser.add_argument("--role", required=True, help=f"one of: {', '.join(Role.values)}")

    def handle(self, *args, **options):
        account = get_account(options["slug"])
        User = get_user_model()
        created = not User.objects.filter(username__iexact=options["email"].strip()).exists()
        try:
            membership = member_add(
                account=account, email=options["email"], role=options["role"], password=options["password"]
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        who = membership.user.username
        if created:
            self.stdout.write(f"Created user {who} as {membership.role} of {account.slug}.")
        else:
            self.stdout.write(f"Added existing user {who} as {membership.role} of {account.slug} (password unchanged).")
