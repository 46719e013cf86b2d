from django.core.management.base import BaseCommand, CommandError

from demo import services
from demo.models import Batch
from organisations.models import Organisation


def seed(organisation) -> bool:
    """Create a little of everything for the organisation; return False if it was already seeded."""
    if Batch.objects.filter(organisation=organisation).exists():
        return False
    batch = services.batch_create(organisation=organisation, strain="Blue Dream", plant_count=240,
                                  room="Flower Room 3")
    harvest = services.harvest_record(batch=batch, wet_weight_grams="48210.5", plant_count=236)
    lot = services.lot_create(organisation=organisation, product="Dried Flower - Blue Dream", strain="Blue Dream",
                              weight_grams="5000", location="Vault A", source_harvest=harvest)
    services.sample_create(lot=lot, weight_grams="10", lab="Keystone Labs", tests=["potency", "microbial"])
    services.order_create(organisation=organisation, customer="Ontario Cannabis Store",
                          lines=[("BD-3.5G", 1200, "8.75")])
    return True


class Command(BaseCommand):
    help = "Seed the demo domain (a batch, a harvest, a lot, a lab sample, an order) once; idempotent."

    def add_arguments(self, parser):
        parser.add_argument("organisation", metavar="ORG_SLUG", nargs="?", default="demo")

    def handle(self, *args, organisation, **options):
        org = Organisation.objects.filter(slug=organisation).first()
        if org is None:
            raise CommandError(f"No organisation with slug {organisation!r}.")
        if seed(org):
            self.stdout.write(f"Seeded the demo domain for {org.slug}: a batch, a harvest, a lot, a sample, an order.")
        else:
            self.stdout.write(f"The demo domain for {org.slug} is already seeded.")
