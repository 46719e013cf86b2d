"""Concurrency caps that hold across threads, processes and machines: leased slot rows in the database.

A sender holds one slot of its endpoint (at most ENDPOINT_SENDERS senders,
so at most that many requests in flight per endpoint) and one of its
organisation (at most ORGANISATION_SENDERS at once, whatever the number of
endpoints: the share of the workers that one organisation's slow or hostile
endpoints can hold, across every process and machine). A slot is a row, taken with one conditional UPDATE, held
until `held_until`: a sender renews it before each request so that it outlasts
the request (delivery.sender), and a sender killed mid-request frees it when
the lease runs out. Nothing is kept in a process, so the caps do not depend on
the worker pool, its size or the number of machines.
"""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from delivery.models import SenderSlot

ENDPOINT_SENDERS = 4
# More than one endpoint's cap, so that one slow endpoint never holds all of its organisation's share.
ORGANISATION_SENDERS = 6
# A lease lasts WEBHOOKS_TIMEOUT + LEASE_EXTRA; its holder renews it before a request that could
# outlive it (RENEW_MARGIN), so a lease never runs out while its request may still be running.
LEASE_EXTRA = 10.0
RENEW_MARGIN = 5.0


def lease_seconds() -> float:
    """Return how long a slot or a claim lasts before its holder must renew it."""
    return settings.WEBHOOKS_TIMEOUT + LEASE_EXTRA


def lease_until() -> datetime:
    return timezone.now() + timedelta(seconds=lease_seconds())


def needs_renewal(until: datetime) -> bool:
    """Return True if a request starting now could outlast a lease that ends at `until`."""
    return (until - timezone.now()).total_seconds() < settings.WEBHOOKS_TIMEOUT + RENEW_MARGIN


def endpoint_scope(subscription_id) -> str:
    return f"endpoint:{subscription_id}"


def organisation_scope(organisation_id) -> str:
    return f"organisation:{organisation_id}"


def new_holder() -> str:
    """Return a token naming one sender's hold on its slots."""
    return uuid.uuid4().hex


def _free(scope: str, cap: int, now: datetime):
    return SenderSlot.objects.filter(scope=scope, number__lt=cap).filter(
        Q(held_until__isnull=True) | Q(held_until__lt=now))


def _take_one(*, scope: str, cap: int, holder: str, until: datetime) -> bool:
    """Take a free slot of the scope for holder; return False if all `cap` are held."""
    for _ in range(cap + 1):
        now = timezone.now()
        free = _free(scope, cap, now)
        first = free.order_by("number").values("pk")[:1]
        # The freeness test is repeated on the row itself: two senders that picked the
        # same row cannot both take it (the loser updates nothing and picks again).
        if free.filter(pk__in=first).update(held_until=until, holder=holder):
            return True
        existing = SenderSlot.objects.filter(scope=scope, number__lt=cap).count()
        if existing >= cap:
            if not free.exists():
                return False
            continue  # lost a race for a free row: pick again
        SenderSlot.objects.bulk_create([SenderSlot(scope=scope, number=n) for n in range(cap)], ignore_conflicts=True)
    return False


def slots_take(*, scopes: list[tuple[str, int]], holder: str, until: datetime) -> bool:
    """Take one slot in each (scope, cap) for holder until `until`; return False (holding none) if any is full."""
    for scope, cap in scopes:
        if not _take_one(scope=scope, cap=cap, holder=holder, until=until):
            slots_release(holder=holder)
            return False
    return True


def slots_renew(*, holder: str, until: datetime) -> None:
    """Extend every slot the holder has to `until`."""
    SenderSlot.objects.filter(holder=holder).update(held_until=until)


def slots_release(*, holder: str) -> None:
    """Free every slot the holder has."""
    with transaction.atomic():
        SenderSlot.objects.filter(holder=holder).update(held_until=None, holder="")


def slots_in_use(*, scope: str) -> int:
    """Return how many slots of the scope are held now."""
    return SenderSlot.objects.filter(scope=scope, held_until__gt=timezone.now()).count()
