"""What the alerts remember: when an endpoint's admins were last told, and who does not want to be."""

from django.db import models

from organisations.models import Membership
from subscriptions.models import Subscription


class EndpointAlert(models.Model):
    """When the admins were last emailed about this endpoint (the "at most once every ALERT_EVERY" rule)."""

    subscription = models.OneToOneField(Subscription, on_delete=models.CASCADE, primary_key=True,
                                        related_name="alert")
    failing_sent_at = models.DateTimeField(null=True, blank=True)
    auto_paused_sent_at = models.DateTimeField(null=True, blank=True)
    # Deliveries that failed for good: the first such failure not yet in a digest (None: nothing to tell),
    # and when the last digest went (at most one every LOST_EVERY).
    lost_since = models.DateTimeField(null=True, blank=True)
    lost_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"alerts of {self.subscription_id}"


class AlertPreference(models.Model):
    """One admin's choice for one organisation; without a row, alerts are on."""

    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, primary_key=True,
                                      related_name="alert_preference")
    email_endpoint_alerts = models.BooleanField(
        "Email me when a webhook endpoint starts failing or is paused automatically", default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.membership}: {'on' if self.email_endpoint_alerts else 'off'}"
