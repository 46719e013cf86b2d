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
from django.db import models
from django.db.models import Q
from django.utils import timezone

from delivery.compiled import Compiled, Param
from delivery.models import SenderSlot

ENDPOINT_SENDERS = 4
# More than one endpoint's cap, so that one slow endpoint never holds all of its organisation's share.
ORGANISATION_SENDERS = 6
# A lease lasts the endpoint's timeout (its own, or WEBHOOKS_TIMEOUT) + LEASE_EXTRA; its holder renews it
# before a request that could outlive it (RENEW_MARGIN), so a lease never runs out while its request may
# still be running.
LEASE_EXTRA = 10.0
RENEW_MARGIN = 5.0
# A take that loses a race for a free row picks again, at most this many times (each loss means
# another sender took a slot, so a few tries settle it).
RACE_TRIES = 5
_TIME = models.DateTimeField()
_SCOPE = models.CharField()
_NUMBER = models.IntegerField()


def lease_seconds(timeout: float | None = None) -> float:
    """Return how long a slot or a claim lasts before its holder must renew it, for requests of `timeout`
    seconds at most (None: WEBHOOKS_TIMEOUT)."""
    return (timeout or settings.WEBHOOKS_TIMEOUT) + LEASE_EXTRA


def lease_until(timeout: float | None = None) -> datetime:
    return timezone.now() + timedelta(seconds=lease_seconds(timeout))


def needs_renewal(until: datetime, timeout: float | None = None) -> bool:
    """Return True if a request of `timeout` seconds at most (None: WEBHOOKS_TIMEOUT) starting now could outlast
    a lease that ends at `until`."""
    return (until - timezone.now()).total_seconds() < (timeout or settings.WEBHOOKS_TIMEOUT) + RENEW_MARGIN


def endpoint_scope(subscription_id) -> str:
    return f"endpoint:{subscription_id}"


def organisation_scope(organisation_id) -> str:
    return f"organisation:{organisation_id}"


def new_holder() -> str:
    """Return a token naming one sender's hold on its slots."""
    return uuid.uuid4().hex


def _free(now) -> Q:
    return Q(held_until__isnull=True) | Q(held_until__lt=now)


def _first_free(scope: str):
    """The lowest free slot of a scope (as a subquery of one pk)."""
    return (SenderSlot.objects.filter(_free(Param("now", _TIME)), scope=Param(scope, _SCOPE),
                                      number__lt=Param(f"{scope}_cap", _NUMBER))
            .order_by("number").values("pk")[:1])


# One statement takes a slot of each scope. The freeness test is repeated on the row itself, so
# two senders that picked the same row cannot both take it (the loser changes one row, not two).
_TAKE = Compiled(lambda: (
    SenderSlot.objects.filter(_free(Param("now", _TIME)))
    .filter(Q(pk__in=_first_free("endpoint")) | Q(pk__in=_first_free("organisation"))),
    {"held_until": Param("until", _TIME), "holder": Param("holder", _SCOPE)}), update=True)
_RENEW = Compiled(lambda: (SenderSlot.objects.filter(holder=Param("holder", _SCOPE)),
                           {"held_until": Param("until", _TIME)}), update=True)
_RELEASE = Compiled(lambda: (SenderSlot.objects.filter(holder=Param("holder", _SCOPE)),
                             {"held_until": None, "holder": ""}), update=True)


def slots_take(*, endpoint: tuple[str, int], organisation: tuple[str, int], holder: str, until: datetime) -> bool:
    """Take one slot of the endpoint's scope and one of the organisation's, each (scope, cap); return False if full.

    One statement when both have a free slot (the usual case). A scope used for the
    first time gets its rows; a lost race is tried again; a full scope leaves the
    holder with nothing.
    """
    for _ in range(RACE_TRIES):
        taken = _TAKE.run(now=timezone.now(), until=until, holder=holder, endpoint=endpoint[0],
                          endpoint_cap=endpoint[1], organisation=organisation[0], organisation_cap=organisation[1])
        if taken == 2:
            return True
        if taken:
            slots_release(holder=holder)
        if not _room(endpoint, organisation):
            return False
    return False


def _room(*scopes: tuple[str, int]) -> bool:
    """Return True if every scope has a free slot, creating the rows of a scope used for the first time."""
    now = timezone.now()
    for scope, cap in scopes:
        existing = SenderSlot.objects.filter(scope=scope, number__lt=cap)
        if existing.count() < cap:
            SenderSlot.objects.bulk_create([SenderSlot(scope=scope, number=n) for n in range(cap)],
                                           ignore_conflicts=True)
        elif not existing.filter(_free(now)).exists():
            return False
    return True


def slot_take_only(*, scope: str, holder: str, until: datetime) -> bool:
    """Take the one slot of a scope that allows one holder (a job that must not run twice at once, such as
    the pruner); return False if another holder has it and its lease has not run out."""
    SenderSlot.objects.bulk_create([SenderSlot(scope=scope, number=0)], ignore_conflicts=True)
    return bool(SenderSlot.objects.filter(_free(timezone.now()), scope=scope, number=0)
                .update(held_until=until, holder=holder))


def slot_held_until(*, scope: str) -> datetime | None:
    """Return when the lease of a scope's held slot ends (None: no slot of it is held)."""
    return (SenderSlot.objects.filter(scope=scope, held_until__gt=timezone.now())
            .order_by("-held_until").values_list("held_until", flat=True).first())


def slots_renew(*, holder: str, until: datetime) -> None:
    """Extend every slot the holder has to `until`."""
    _RENEW.run(holder=holder, until=until)


def slots_release(*, holder: str) -> None:
    """Free every slot the holder has."""
    _RELEASE.run(holder=holder)


def slots_in_use(*, scope: str) -> int:
    """Return how many slots of the scope are held now."""
    return SenderSlot.objects.filter(scope=scope, held_until__gt=timezone.now()).count()
