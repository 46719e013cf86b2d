"""Coalesced wake-ups: at most one waiting message per endpoint, not one per delivery.

Publishing a Celery message costs a caller more than writing its event
(about a third of record_activity's CPU, measured), and each message costs
the worker a lookup. A sender drains every due delivery of its endpoint
anyway (delivery.batching), so while one is queued or running, a message
per new delivery only adds work. A Redis key per endpoint says "a sender is
queued or running for this endpoint, and will look at the database again
after now":

- the caller, on commit, sets the key only if it is absent (SET NX, one
  pipelined round trip for all its endpoints) and publishes a message only
  where it set it;
- a sender refreshes the key while it drains, and deletes it before its last
  look for due deliveries (delivery.batching), so a delivery committed before
  that delete is found by that look, and one committed after it finds no key
  and publishes its own message.

The key expires (WEBHOOKS_SWEEP_GRACE), so a sender that dies holding it
delays new messages by at most that long, and what it left due is the
sweeper's, as for any lost message. On with PostgreSQL and a Redis broker
(WEBHOOKS_COALESCE_WAKEUPS); otherwise every delivery gets its own message.
"""

import logging
import threading

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

KEY_PREFIX = "webhooks:wake:"
_local = threading.local()


def enabled() -> bool:
    """Return True if deliveries are woken per endpoint (PostgreSQL senders and a Redis broker)."""
    return (
        settings.WEBHOOKS_COALESCE_WAKEUPS
        and settings.WEBHOOKS_BATCHING
        and connection.vendor == "postgresql"
        and settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://", "unix://"))
    )


def _client():
    """Return this thread's Redis client for the broker's server (redis-py; created once per thread)."""
    import redis

    url = settings.CELERY_BROKER_URL
    client = getattr(_local, "client", None)
    if client is None or _local.url != url:
        client = _local.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        _local.url = url
    return client


def _key(subscription_id) -> str:
    return f"{KEY_PREFIX}{subscription_id}"


def _ttl_ms() -> int:
    return int(settings.WEBHOOKS_SWEEP_GRACE * 1000)


def endpoints_claim(subscription_ids) -> set:
    """Set the wake key of each endpoint that has none; return the endpoints whose key was set here.

    Only those need a message. If Redis cannot be reached every endpoint is
    returned, so the caller publishes as without coalescing.
    """
    ids = list(dict.fromkeys(subscription_ids))
    try:
        pipe = _client().pipeline(transaction=False)
        for subscription_id in ids:
            pipe.set(_key(subscription_id), 1, nx=True, px=_ttl_ms())
        answers = pipe.execute()
    except Exception:  # noqa: BLE001 - without the key, a message per endpoint is the safe default
        logger.warning("Wake-up keys unavailable; publishing without coalescing", exc_info=True)
        return set(ids)
    return {subscription_id for subscription_id, was_set in zip(ids, answers, strict=True) if was_set}


def endpoint_hold(subscription_id) -> None:
    """Mark the endpoint as being drained (refreshing the key), so new deliveries publish nothing."""
    try:
        _client().set(_key(subscription_id), 1, px=_ttl_ms())
    except Exception:  # noqa: BLE001 - without the key, callers publish: more messages, nothing lost
        logger.warning("Could not set the wake-up key of %s", subscription_id, exc_info=True)


def endpoint_release(subscription_id) -> None:
    """Delete the endpoint's key before the sender's last look, so later deliveries publish again."""
    try:
        _client().delete(_key(subscription_id))
    except Exception:  # noqa: BLE001 - the key expires; what it held back is swept after the grace
        logger.warning("Could not delete the wake-up key of %s", subscription_id, exc_info=True)
