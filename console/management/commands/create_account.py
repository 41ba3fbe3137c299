"""manage.py create_account SLUG --name NAME --tier TIER [--retention-days N] [--timezone TZ]"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from console.models import Tier
from console.services import account_create


def validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(message for messages in exc.message_dict.values() for message in messages)
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = "Create a customer account."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--tier", required=True, help=f"one of: {', '.join(Tier.values)}")
        parser.add_argument("--retention-days", type=int, default=None, help="override the tier's retention")
        parser.add_argument("--timezone", default="UTC", help="IANA name, e.g. Europe/Berlin")
        parser.add_argument("--privacy-mode", action="store_true", help="drop request params, UA and full IPs")

    def handle(self, *args, **options):
        try:
            account = account_create(
                slug=options["slug"],
                name=options["name"],
                tier=options["tier"],
                retention_days=options["retention_days"],
                timezone=options["timezone"],
                privacy_mode=options["privacy_mode"],
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        self.stdout.write(
            f"Created account {account.slug} ({account.name}, {account.tier}, "
            f"{account.retention_days} days retention, {account.timezone})."
        )
