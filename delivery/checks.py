"""Deploy checks (`manage.py check --deploy`) for the webhook sender's own settings."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def private_networks_are_guarded(app_configs, **kwargs):
    """Return a warning when the SSRF guard is lifted in a deployment."""
    if settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        return [Warning(
            "WEBHOOKS_ALLOW_PRIVATE_NETWORKS is on: endpoints may reach loopback, private and "
            "cloud-metadata addresses.",
            hint="Leave it off (the default) outside development and tests; see docs/SECURITY.md.",
            id="delivery.W001",
        )]
    return []
