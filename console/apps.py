from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operator console: the server-rendered Administration pages, a face on the services and selectors."""

    name = "console"
