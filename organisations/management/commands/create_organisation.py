from django.core.management.base import BaseCommand

from organisations.services import organisation_create


class Command(BaseCommand):
    help = "Create an organisation and an admin member (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin", required=True, help="username of the admin member")
        parser.add_argument("--password", required=True)

    def handle(self, *args, slug, name, admin, password, **options):
        organisation = organisation_create(slug=slug, name=name, admin_username=admin, admin_password=password)
        self.stdout.write(f"Organisation {organisation.slug} ({organisation.name}); admin login: {admin}")
