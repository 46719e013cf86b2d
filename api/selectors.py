"""Reads of the API side."""

from django.db.models import QuerySet

from api.models import ApiKey
from api.services import KEY_PREFIX, key_hash

MAX_KEY_LENGTH = 100


def api_key_for_token(*, token: str) -> ApiKey | None:
    """Return the usable key (not revoked, not expired) whose text is `token`, with its organisation; else None.

    One query on the unique hash index, joined to the organisation.
    """
    if not token.startswith(KEY_PREFIX) or len(token) > MAX_KEY_LENGTH:
        return None
    api_key = ApiKey.objects.select_related("organisation").filter(key_hash=key_hash(token)).first()
    return api_key if api_key is not None and api_key.usable() else None


def api_keys_for_organisation(*, organisation) -> QuerySet[ApiKey]:
    """Return the organisation's keys, revoked ones included (they are its trail), newest first."""
    return (ApiKey.objects.filter(organisation=organisation).select_related("created_by", "revoked_by")
            .order_by("-created_at"))


def api_key_get(*, organisation, api_key_id) -> ApiKey | None:
    """Return the organisation's key with that id, or None (never another organisation's)."""
    return ApiKey.objects.filter(organisation=organisation, id=api_key_id).first()
