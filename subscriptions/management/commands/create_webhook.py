from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from organisations.models import Organisation
from subscriptions.services import subscription_create


class Command(BaseCommand):
    help = "Create a webhook subscription; prints its signing secret once, on the last line."

    def add_arguments(self, parser):
        parser.add_argument("organisation", metavar="ORG_SLUG")
        parser.add_argument("url", metavar="URL")
        parser.add_argument("--activity-types", required=True, help="comma-separated codes, e.g. lot.created")
        parser.add_argument("--description", default="")

    def handle(self, *args, organisation, url, activity_types, description, **options):
        org = Organisation.objects.filter(slug=organisation).first()
        if org is None:
            raise CommandError(f"No organisation with slug {organisation!r}.")
        try:
            subscription, secret = subscription_create(
                organisation=org, url=url, activity_types=activity_types.split(","), description=description
            )
        except ValidationError as exc:
            messages = [f"{field}: {m}" for field, errors in exc.message_dict.items() for m in errors]
            raise CommandError("; ".join(messages)) from None
        self.stdout.write(f"Created webhook {subscription.id} for {subscription.url}")
        self.stdout.write("Save this signing secret now; it is not shown again:")
        self.stdout.write(secret)
