from django.core.management.base import BaseCommand, CommandError

from delivery.retention import deliveries_prune


class Command(BaseCommand):
    help = (
        "Delete deliveries that finished more than WEBHOOKS_RETENTION_DAYS ago, with their attempts, "
        "and events left without deliveries; never an unfinished delivery. Beat runs it hourly."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=None, help="override WEBHOOKS_RETENTION_DAYS")

    def handle(self, *args, days, **options):
        if days is not None and days < 0:
            raise CommandError("--days must be zero or more.")
        counts = deliveries_prune(days=days)
        self.stdout.write(f"Pruned {counts['deliveries']} deliveries and {counts['events']} events.")
