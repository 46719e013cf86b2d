"""The Delivery state machine: every write of a delivery's state, and the retry rules.

    (new) --> pending --> succeeded
       \\        |  \\---> failed        (retry schedule exhausted)
        \\       |   \\--> cancelled     (subscription deleted)
         \\      v
          `--> held <--> pending      (pause / Resume; 410 Gone holds, then pauses)
    succeeded, failed, cancelled --> pending   (Redeliver, "Retry failed since")

A pending delivery is due when `next_attempt_at` has passed; a sender claims
it with `locked_until` (delivery.sender). Waiting for an endpoint's slot or its
open breaker does not change a delivery and uses up no retry: it stays due.
Nothing outside this module writes `state`, `next_attempt_at`,
`locked_until`, `attempt_count` or `schedule_offset`.
"""

import random
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from delivery.models import Attempt, Delivery, Event
from delivery.transport import Response
from subscriptions.models import Subscription

RETRY_JITTER = 0.1  # +/- 10 %, so retries of many deliveries do not arrive in lockstep
DELETED = "Cancelled: the subscription was deleted."

State = Delivery.State


# --- the retry rules -----------------------------------------------------------

def next_attempt_at(*, attempts_made: int, now: datetime, minimum_delay: float | None = None) -> datetime | None:
    """Return when attempt number attempts_made + 1 is due, or None when the schedule is exhausted.

    minimum_delay (from a Retry-After answer) pushes the retry later, never earlier.
    """
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    if attempts_made > len(schedule):
        return None
    delay = schedule[attempts_made - 1] * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
    if minimum_delay is not None:
        delay = max(delay, minimum_delay)
    return now + timedelta(seconds=delay)


def retry_after_seconds(response: Response) -> float | None:
    """Return the Retry-After delay of a 429 or 503 answer, in seconds, or None."""
    if response.status_code not in (429, 503):
        return None
    value = {k.lower(): v for k, v in response.headers.items()}.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def summary(response: Response) -> str:
    """Return the one-line outcome the log shows for an attempt ("" for a success)."""
    if response.error_kind:
        return response.error_message[:300]
    if response.ok:
        return ""
    return f"HTTP {response.status_code}"


def _after_attempt(delivery: Delivery, response: Response, *, number: int, now: datetime) -> dict:
    """Return the state fields of a pending delivery after this attempt: done, held (410 Gone), or due again."""
    if response.ok:
        return {"state": State.SUCCEEDED, "completed_at": now, "next_attempt_at": None}
    if response.status_code == 410:
        # The endpoint says it is gone: the subscription is paused next, and this
        # delivery is held with the rest, to be sent on Resume.
        return {"state": State.HELD, "next_attempt_at": None}
    due = next_attempt_at(attempts_made=number - delivery.schedule_offset, now=now,
                          minimum_delay=retry_after_seconds(response))
    if due is None:
        return {"state": State.FAILED, "completed_at": now, "next_attempt_at": None}
    return {"next_attempt_at": due}


# --- creation --------------------------------------------------------------------

def deliveries_create(*, event: Event, targets: list[tuple]) -> list[Delivery]:
    """Insert one delivery of the event per (subscription id, subscription state); return them.

    An active subscription's delivery is pending and due now; a paused one's is
    held, never dropped.
    """
    active = Subscription.State.ACTIVE
    deliveries = [
        Delivery(
            event=event, subscription_id=subscription_id, activity_type=event.activity_type,
            created_at=event.created_at,
            state=State.PENDING if state == active else State.HELD,
            next_attempt_at=event.created_at if state == active else None,
        )
        for subscription_id, state in targets
    ]
    return Delivery.objects.bulk_create(deliveries)


# --- a sender's claim ------------------------------------------------------------------

def _due(subscription_id, now: datetime):
    return Delivery.objects.filter(
        subscription_id=subscription_id, state=State.PENDING, next_attempt_at__lte=now,
    ).filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))


def deliveries_claim(*, subscription_id, until: datetime, limit: int, tests_only: bool = False) -> list[Delivery]:
    """Lock up to `limit` due deliveries of the endpoint until `until`, oldest due first; return them with events.

    Rows another sender is claiming are skipped (PostgreSQL: SKIP LOCKED); on
    SQLite the transaction holds the database's write lock, which serialises
    claims all the same. `tests_only`: only test sends (an open breaker lets those pass).
    """
    now = timezone.now()
    due = _due(subscription_id, now)
    if tests_only:
        due = due.filter(event__is_test=True)
    with transaction.atomic():
        ids = list(due.order_by("next_attempt_at", "created_at")
                   .select_for_update(skip_locked=True, of=("self",)).values_list("id", flat=True)[:limit])
        if not ids:
            return []
        Delivery.objects.filter(id__in=ids).update(locked_until=until)
    claimed = {d.id: d for d in Delivery.objects.filter(id__in=ids).select_related("event")}
    return [claimed[i] for i in ids if i in claimed]


def deliveries_extend(*, ids, until: datetime) -> None:
    """Push the claim of these deliveries (still claimed by the caller) to `until`."""
    Delivery.objects.filter(id__in=list(ids), state=State.PENDING).update(locked_until=until)


def deliveries_unclaim(*, ids) -> None:
    """Give back claimed deliveries that were not sent: due as they were, for the next sender."""
    Delivery.objects.filter(id__in=list(ids)).update(locked_until=None)


def has_due(*, subscription_id, tests_only: bool = False) -> bool:
    """Return True if a delivery of the endpoint (a test send, with tests_only) is due and not claimed."""
    due = _due(subscription_id, timezone.now())
    return (due.filter(event__is_test=True) if tests_only else due).exists()


# --- the outcome of an attempt ------------------------------------------------------

def deliveries_record(*, sent: list[tuple[Delivery, Attempt, Response]]) -> dict:
    """Save the attempts and move their deliveries on, in the caller's transaction; return {delivery id: state}.

    One path for a batch of one and a batch of many: the attempts in one insert, the
    successes in two updates per status code, each failure by itself (its retry time is
    its own). After an attempt a pending delivery is succeeded, pending again (a retry),
    failed (the schedule is spent) or held (410 Gone). Only a delivery still pending moves
    on: one cancelled or held while its request was in flight keeps that state, but still
    counts the attempt, so attempt numbers stay unique.
    """
    now = timezone.now()
    Attempt.objects.bulk_create([attempt for _, attempt, _ in sent])
    after: dict = {}
    by_status: dict[int, list] = {}
    for delivery, _, response in sent:
        if response.ok:
            by_status.setdefault(response.status_code, []).append(delivery.id)
    for status, ids in by_status.items():
        counted = {"attempt_count": F("attempt_count") + 1, "last_status_code": status, "last_error": "",
                   "locked_until": None}
        # Those no longer pending first (they keep their state), then the rest succeed.
        Delivery.objects.filter(id__in=ids).exclude(state=State.PENDING).update(**counted)
        Delivery.objects.filter(id__in=ids, state=State.PENDING).update(
            **counted, state=State.SUCCEEDED, completed_at=now, next_attempt_at=None)
        after.update(dict.fromkeys(ids, State.SUCCEEDED))
    for delivery, attempt, response in sent:
        if response.ok:
            continue
        counted = {"attempt_count": attempt.number, "last_status_code": response.status_code,
                   "last_error": summary(response), "locked_until": None}
        moved = _after_attempt(delivery, response, number=attempt.number, now=now)
        if Delivery.objects.filter(id=delivery.id, state=State.PENDING).update(**counted, **moved):
            after[delivery.id] = moved.get("state", State.PENDING)
        else:
            Delivery.objects.filter(id=delivery.id).update(**counted)
            after[delivery.id] = Delivery.objects.filter(id=delivery.id).values_list("state", flat=True).get()
    return after


def delivery_record(*, delivery: Delivery, attempt: Attempt, response: Response) -> str:
    """Record one attempt (deliveries_record with a batch of one); return the delivery's state after it."""
    return deliveries_record(sent=[(delivery, attempt, response)])[delivery.id]


# --- operator and lifecycle transitions ---------------------------------------------

def delivery_hold(*, delivery_id) -> bool:
    """Hold one pending delivery (its subscription is paused); return True if it was pending."""
    return bool(Delivery.objects.filter(id=delivery_id, state=State.PENDING).update(
        state=State.HELD, next_attempt_at=None, locked_until=None))


def deliveries_hold(*, subscription_id) -> int:
    """Hold the subscription's pending deliveries that no sender has claimed (on pause); return how many.

    A claimed one is held by its sender before its POST, or after its attempt is recorded.
    """
    now = timezone.now()
    return Delivery.objects.filter(subscription_id=subscription_id, state=State.PENDING).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    ).update(state=State.HELD, next_attempt_at=None, locked_until=None)


def deliveries_release_held(*, subscription_id) -> int:
    """Make the subscription's held deliveries due now (on Resume); return how many.

    All get the same due time; senders take them oldest first (created_at).
    """
    return Delivery.objects.filter(subscription_id=subscription_id, state=State.HELD).update(
        state=State.PENDING, next_attempt_at=timezone.now(), locked_until=None)


def deliveries_cancel(*, subscription_id, reason: str = DELETED) -> int:
    """Cancel every unfinished delivery of a subscription, claimed ones included; return how many."""
    return Delivery.objects.filter(subscription_id=subscription_id, state__in=Delivery.UNFINISHED).update(
        state=State.CANCELLED, next_attempt_at=None, locked_until=None, completed_at=timezone.now(),
        last_error=reason)


def _again(queryset, *, active: bool) -> int:
    """Send finished deliveries again with a fresh retry schedule and their event ids; return how many."""
    common = {"completed_at": None, "locked_until": None, "schedule_offset": F("attempt_count")}
    if active:
        return queryset.update(state=State.PENDING, next_attempt_at=timezone.now(), **common)
    return queryset.update(state=State.HELD, next_attempt_at=None, **common)


def delivery_redeliver(*, delivery: Delivery) -> bool:
    """Make a finished delivery of an active subscription due now; return False if it is unfinished."""
    return bool(_again(Delivery.objects.filter(id=delivery.id).exclude(state__in=Delivery.UNFINISHED), active=True))


def deliveries_recover(*, subscription: Subscription, since: datetime) -> int:
    """Send again every failed delivery of the subscription created since `since`; return how many.

    On a paused subscription they are held, to go on Resume.
    """
    failed = Delivery.objects.filter(subscription=subscription, state=State.FAILED, created_at__gte=since)
    return _again(failed, active=subscription.is_active)
