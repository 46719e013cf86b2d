from django.core.management.base import BaseCommand, CommandError

from delivery.retention import PruneRunning, deliveries_prune, deliveries_prune_preview


class Command(BaseCommand):
    help = (
        "Delete deliveries that finished more than WEBHOOKS_RETENTION_DAYS ago, with their attempts, "
        "events left without deliveries and the charts' hourly counts of that age; never an unfinished "
        "delivery. Deletes in short, paced batches, then (PostgreSQL) vacuums the pruned tables so their space "
        "is reused. Beat runs it hourly; one run at a time (a second is refused). --dry-run says what it would "
        "remove."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=None, help="override WEBHOOKS_RETENTION_DAYS")
        parser.add_argument("--batch-size", type=int, default=None, help="rows per transaction (default 1000)")
        parser.add_argument("--dry-run", action="store_true", help="count what would be removed; delete nothing")

    def handle(self, *args, days, batch_size, dry_run, **options):
        if days is not None and days < 0:
            raise CommandError("--days must be zero or more.")
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        if dry_run:
            counts = deliveries_prune_preview(days=days)
            chart_rows = counts["attempt_hours"] + counts["hour_summaries"]
            self.stdout.write(
                f"Dry run: nothing deleted. Would prune {counts['deliveries']} deliveries that finished before "
                f"{counts['cutoff']:%Y-%m-%d %H:%M} UTC, with their {counts['attempts']} attempts, "
                f"{counts['events']} events and {chart_rows} hourly chart rows.")
            return
        try:
            counts = deliveries_prune(days=days, batch_size=batch_size)
        except PruneRunning as running:
            raise CommandError(str(running)) from running
        chart_rows = counts["attempt_hours"] + counts["hour_summaries"]
        self.stdout.write(f"Pruned {counts['deliveries']} deliveries, {counts['events']} events and "
                          f"{chart_rows} hourly chart rows.")
