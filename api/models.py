import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from organisations.models import Organisation


class ApiKey(models.Model):
    """An organisation's key to the management API. Only the SHA-256 of the key is stored: it cannot be recovered.

    The key is `whk_` + 8 characters (the prefix, shown to tell keys apart) + `_` + 32 more random ones.
    The row is its own audit trail: who created it and when, who revoked it and when.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read: webhooks, deliveries, the event catalogue"
        WRITE = "write", "Write: create, change and delete webhooks, test, redeliver, recover (and read)"
        EVENTS = "events", "Events: post activities (POST /api/v1/events)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)  # hex SHA-256 of the whole key: the one lookup
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    # Activities posted through this key (POST /api/v1/events): counted here, not written to the trail one by one.
    events_ingested = models.PositiveBigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at"], name="apikey_org_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def trail_via(self) -> str:
        """How the subscriptions' trail names a change made through this key."""
        return f"API key {self.prefix}"

    def grants(self, scope: str) -> bool:
        """Return whether the key may do what `scope` names (write includes read)."""
        return scope in self.scopes or (scope == self.Scope.READ and self.Scope.WRITE in self.scopes)

    def usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
