"""`manage.py check_health`: the /readyz checks from a shell or a container probe (exit 0 ready, 1 not)."""

import json

from django.core.management.base import BaseCommand, CommandError

from operations.readiness import readiness


class Command(BaseCommand):
    help = "Check the database, the broker, and that a worker and the scheduler are alive; print JSON."

    def handle(self, *args, **options):
        result = readiness()
        self.stdout.write(json.dumps({"status": "ok" if result["ok"] else "failing", "checks": result["checks"]},
                                     indent=2))
        if not result["ok"]:
            failed = ", ".join(name for name, check in result["checks"].items() if not check["ok"])
            raise CommandError(f"not ready: {failed}")
