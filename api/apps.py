from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The management API (/api/v1/): a face on the services and selectors, authenticated by organisation keys."""

    name = "api"
