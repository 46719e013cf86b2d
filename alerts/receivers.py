"""Receivers of delivery.signals: a few lines each, the work is in alerts.services."""

from alerts import services


def email_on_failing(sender, *, subscription, reason: str, **kwargs) -> None:
    services.alert_endpoint_failing(subscription=subscription, reason=reason)


def note_lost(sender, *, subscription_id, **kwargs) -> None:
    services.alert_lost_noted(subscription_id=subscription_id)


def email_on_auto_paused(sender, *, subscription, reason: str, **kwargs) -> None:
    services.alert_endpoint_auto_paused(subscription=subscription, reason=reason)
