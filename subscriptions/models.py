import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from organisations.models import Organisation
from subscriptions.activity_types import ACTIVITY_TYPES, get_activity_type
from subscriptions.custom_headers import MASK
from subscriptions.validators import MAX_URL_LENGTH, validate_endpoint_url

# What a receiver may ask of the sender (docs/RECEIVING.md): a timeout of its own, in seconds, a rate limit
# in deliveries per second, and delivery in order.
TIMEOUT_MIN, TIMEOUT_MAX = 1, 30
RATE_MIN, RATE_MAX = 1, 1000


class Subscription(models.Model):
    """Where events go (URL and secret) and, through its activity types, which ones."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="subscriptions")
    url = models.CharField("Endpoint URL", max_length=MAX_URL_LENGTH, validators=[validate_endpoint_url])
    description = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    paused_reason = models.CharField(max_length=300, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # Fernet token of the `whsec_...` secret; never the secret itself.
    secret_encrypted = models.TextField(editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    # A planned rotation: the previous secret (encrypted) also signs until then (Regenerate Secret's option).
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    # Sent on every attempt: [{"name": ..., "value": ..., "secret": bool}]; a secret value is
    # stored encrypted like the signing secret (subscriptions/custom_headers.py).
    custom_headers = models.JSONField(default=list, blank=True)
    # The hard deadline of each exchange with this endpoint, in seconds; NULL: the WEBHOOKS_TIMEOUT setting.
    timeout_seconds = models.PositiveSmallIntegerField(
        "Timeout (seconds)", null=True, blank=True,
        validators=[MinValueValidator(TIMEOUT_MIN), MaxValueValidator(TIMEOUT_MAX)])
    # At most this many requests per second to this endpoint, across every worker (delivery.pacing); NULL: no limit.
    max_per_second = models.PositiveSmallIntegerField(
        "Maximum deliveries per second", null=True, blank=True,
        validators=[MinValueValidator(RATE_MIN), MaxValueValidator(RATE_MAX)])
    # One delivery in flight at a time, in the order the events were recorded (delivery.states.in_order).
    ordered = models.BooleanField("Deliver in order", default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "created_at"], name="sub_org_created")]

    def __str__(self) -> str:
        return self.url

    @property
    def is_active(self) -> bool:
        return self.state == self.State.ACTIVE

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def public_id(self) -> str:
        return f"ep_{self.id.hex}"

    @property
    def timeout(self) -> float:
        """Return the hard deadline of one exchange with this endpoint, in seconds (its own, or the setting)."""
        return float(self.timeout_seconds or settings.WEBHOOKS_TIMEOUT)

    @property
    def shown_headers(self) -> list[dict]:
        """Return the custom headers as pages show them: {"name", "value", "secret"}, secret values masked."""
        return [{"name": h["name"], "value": MASK if h.get("secret") else h["value"], "secret": bool(h.get("secret"))}
                for h in self.custom_headers or []]

    @property
    def old_secret_signs_until(self):
        """Return until when the previous secret also signs (a planned rotation running now), or None."""
        until = self.previous_secret_until
        return until if until is not None and until > timezone.now() else None


class SubscribedActivityType(models.Model):
    """One activity type a subscription receives (the "when", apart from the "where")."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="activity_types")
    activity_type = models.CharField(max_length=64, choices=[(c, t.label) for c, t in ACTIVITY_TYPES.items()])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "activity_type"], name="unique_subscribed_type")
        ]
        indexes = [models.Index(fields=["activity_type", "subscription"], name="subscribed_type_lookup")]

    def __str__(self) -> str:
        return self.activity_type

    def clean(self):
        if get_activity_type(self.activity_type) is None:
            raise ValidationError({"activity_type": f"Unknown activity type: {self.activity_type!r}."})


class TrailEntry(models.Model):
    """Who did what to a subscription, and when. Append-only; holds no secret."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        EDITED = "edited", "Edited"
        TESTED = "tested", "Sent a test"
        PAUSED = "paused", "Paused"
        AUTO_PAUSED = "auto_paused", "Paused automatically"
        RESUMED = "resumed", "Resumed"
        SECRET_REGENERATED = "secret_regenerated", "Regenerated the secret"
        OLD_SECRET_STOPPED = "old_secret_stopped", "Stopped the old secret"
        REDELIVERED = "redelivered", "Redelivered"
        RECOVERED = "recovered", "Retried failed deliveries"
        DELETED = "deleted", "Deleted"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="trail")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # What acted when no person did it in a page: "API key whk_AbCd1234" for a change made through the API.
    via = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    detail = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["subscription", "-at"], name="trail_sub_at")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor or 'system'}"


def trail_by(by) -> dict:
    """Return TrailEntry's `actor` and `via` for whoever acted: a user, None (the system), or an API key.

    An API key (anything with a `trail_via` text; subscriptions does not import the API) is named by its
    prefix in `via`, with no user.
    """
    via = getattr(by, "trail_via", None)
    if via is not None:
        return {"actor": None, "via": via}
    return {"actor": by, "via": ""}
