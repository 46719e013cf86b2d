"""Writes of the API side: organisation keys created, revoked, seen in use, and the events they posted."""

import hashlib
import secrets
import string
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from api.models import ApiKey

KEY_PREFIX = "whk_"
_ALPHABET = string.ascii_letters + string.digits
# last_used_at is written at most this often per key: a busy key costs no write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def key_hash(key: str) -> str:
    """Return the stored form of a key: the hex SHA-256 of its text (keys are random, so no salt is needed)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def api_key_create(*, organisation, name: str, scopes: list[str], expires_at: datetime | None = None,
                   created_by=None) -> tuple[ApiKey, str]:
    """Create a key; return it and the key itself (the only time it is returned: only its hash is kept)."""
    name = name.strip()
    chosen = [s for s in ApiKey.Scope.values if s in set(scopes)]
    errors = {}
    if not name:
        errors["name"] = "Give the key a name, to tell it apart from the others."
    if not chosen or len(chosen) != len(set(scopes)):
        errors["scopes"] = "Choose at least one scope: read, write or events."
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = "Choose an expiry in the future, or none."
    if errors:
        raise ValidationError(errors)
    prefix = KEY_PREFIX + _random(8)
    key = f"{prefix}_{_random(32)}"
    api_key = ApiKey.objects.create(organisation=organisation, name=name[:100], prefix=prefix,
                                    key_hash=key_hash(key), scopes=chosen, expires_at=expires_at,
                                    created_by=created_by)
    return api_key, key


def api_key_revoke(*, api_key: ApiKey, by=None) -> bool:
    """Revoke the key from now on; return False if it already was."""
    now = timezone.now()
    revoked = ApiKey.objects.filter(id=api_key.id, revoked_at__isnull=True).update(revoked_at=now, revoked_by=by)
    if revoked:
        api_key.revoked_at, api_key.revoked_by = now, by
    return bool(revoked)


def api_key_used(*, api_key: ApiKey, now: datetime | None = None) -> None:
    """Note that the key was used now, if its last use on record is older than LAST_USED_RESOLUTION."""
    now = now or timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(id=api_key.id).update(last_used_at=now)
        api_key.last_used_at = now


def api_key_count_events(*, api_key: ApiKey, count: int) -> None:
    """Add `count` posted events to the key's tally, in the caller's transaction (a rollback counts nothing)."""
    ApiKey.objects.filter(id=api_key.id).update(events_ingested=F("events_ingested") + count)
