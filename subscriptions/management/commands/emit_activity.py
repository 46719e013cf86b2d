import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from organisations.models import Organisation
from subscriptions.activity import record_activity
from subscriptions.exceptions import ActivityError


class Command(BaseCommand):
    help = "Record an activity through the same signal domain code uses; prints each event id."

    def add_arguments(self, parser):
        parser.add_argument("organisation", metavar="ORG_SLUG")
        parser.add_argument("activity_type", metavar="ACTIVITY_TYPE")
        parser.add_argument("--data", default="{}", help="a JSON object")
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument("--idempotency-key", default=None)

    def handle(self, *args, organisation, activity_type, data, count, idempotency_key, **options):
        org = Organisation.objects.filter(slug=organisation).first()
        if org is None:
            raise CommandError(f"No organisation with slug {organisation!r}.")
        if count < 1:
            raise CommandError("--count must be at least 1.")
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--data is not valid JSON: {exc}") from None
        for _ in range(count):
            try:
                with transaction.atomic():
                    event = record_activity(
                        organisation=org, activity_type=activity_type, data=payload,
                        idempotency_key=idempotency_key,
                    )
            except ActivityError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(event.webhook_id)
