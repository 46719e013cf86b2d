from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from subscriptions.event_docs import render_markdown


def default_path() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "EVENTS.md"


class Command(BaseCommand):
    help = "Write docs/EVENTS.md from the activity-type catalogue (--check: fail if it is stale)."

    def add_arguments(self, parser):
        parser.add_argument("--output", type=Path, default=None, help="file to write [docs/EVENTS.md]")
        parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file differs")

    def handle(self, *args, output, check, **options):
        path = output or default_path()
        text = render_markdown()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if check:
            if current != text:
                raise CommandError(f"{path} is stale: run `python manage.py generate_event_docs`.")
            self.stdout.write(f"{path} is up to date.")
            return
        if current == text:
            self.stdout.write(f"{path} is up to date.")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.stdout.write(f"Wrote {path}.")
