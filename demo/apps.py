from django.apps import AppConfig


class DemoConfig(AppConfig):
    """A small cultivation business whose services record activities, as a real domain app would."""

    name = "demo"
    verbose_name = "Demo cultivation domain"
