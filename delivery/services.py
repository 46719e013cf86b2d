"""Writes of the delivery side: send one attempt, sweep, redeliver, cancel, hold, release.

Endpoint isolation (cap, breaker, automatic pause) is in delivery.health,
"retry failed since" in delivery.recovery, pruning in delivery.retention.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from delivery import health, retry, signing, transport
from delivery.models import Attempt, Delivery, webhook_id_for
from delivery.outbox import enqueue_deliveries, wake_endpoints
from subscriptions.models import Subscription
from subscriptions.signing_secrets import decrypt_secret

logger = logging.getLogger(__name__)

SWEEP_BATCH = 1000
MAX_HEADER_VALUE = 1000


def _claim(*, delivery_id) -> Delivery | None:
    """Take the lease on a due, pending delivery that may be sent now; return it, or None.

    This is the final check before the POST, under a row lock on the delivery:
    a delete (which cancels under the same lock) or a pause that committed
    before it means nothing is sent, even for a task already queued or running.
    Only a delete that commits while the request is in flight cannot stop it.
    On SQLite select_for_update is a no-op, but the transaction itself takes
    the database's write lock (transaction_mode IMMEDIATE), which serialises it
    against the delete all the same.
    """
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("event", "subscription")
            .filter(id=delivery_id, state=Delivery.State.PENDING, next_attempt_at__lte=now)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .first()
        )
        if delivery is None:
            return None
        subscription = delivery.subscription
        if subscription.is_deleted:
            _finish(delivery, state=Delivery.State.CANCELLED, error="Cancelled: the subscription was deleted.")
            return None
        if not subscription.is_active:
            Delivery.objects.filter(id=delivery.id).update(
                state=Delivery.State.HELD, locked_until=None, next_attempt_at=None
            )
            return None
        retry_at = health.endpoint_admit(
            health=health.endpoint_lock(subscription=subscription), now=now, is_test=delivery.event.is_test
        )
        if retry_at is not None:
            # Deferred, not attempted: enqueued_at cleared so the sweeper sends it when due.
            Delivery.objects.filter(id=delivery.id).update(next_attempt_at=retry_at, enqueued_at=None)
            return None
        delivery.locked_until = now + timedelta(seconds=health.lease_seconds())
        Delivery.objects.filter(id=delivery.id).update(locked_until=delivery.locked_until)
    return delivery


def delivery_still_wanted(*, delivery_id) -> bool:
    """Return True if a delivery already leased may be POSTed now (checked under its row lock).

    For senders that lease several deliveries at once and POST them one after
    another: call it right before each POST, so that a delete (or a pause)
    that committed meanwhile stops every request not yet made. The lease is
    the caller's; nothing is written here.
    """
    with transaction.atomic():
        return (
            Delivery.objects.select_for_update(of=("self",))
            .filter(id=delivery_id, state=Delivery.State.PENDING, subscription__deleted_at__isnull=True,
                    subscription__state=Subscription.State.ACTIVE)
            .values_list("id", flat=True)
            .first()
        ) is not None


def delivery_attempt(*, delivery_id) -> Attempt | None:
    """Send one attempt of a delivery if it is due and still wanted; return the Attempt, or None."""
    delivery = _claim(delivery_id=delivery_id)
    if delivery is None:
        return None
    subscription = delivery.subscription
    # Signed now, with the current secret: a regenerated secret applies to the
    # very next attempt, retries of older events included.
    body = delivery.event.body.encode()
    msg_id = webhook_id_for(delivery.event_id)
    timestamp = int(time.time())
    headers = signing.signed_headers(
        secret=decrypt_secret(subscription.secret_encrypted), msg_id=msg_id, timestamp=timestamp, body=body
    )
    started_at = timezone.now()
    response = transport.post(subscription.url, body, headers)
    return _record(delivery=delivery, url=subscription.url, started_at=started_at,
                   request_headers=headers, response=response)


def attempt_row(*, delivery_id, number: int, url: str, started_at, request_headers,
                response: transport.Response) -> Attempt:
    """Return the (unsaved) Attempt row of one HTTP try; the one shape both send paths record."""
    return Attempt(
        delivery_id=delivery_id,
        number=number,
        url=url,
        started_at=started_at,
        duration_ms=response.duration_ms,
        request_headers={"Content-Type": "application/json", "User-Agent": transport.USER_AGENT, **request_headers},
        status_code=response.status_code,
        response_headers={k: v[:MAX_HEADER_VALUE] for k, v in response.headers.items()},
        response_body=response.body.decode("utf-8", errors="replace"),
        response_truncated=response.truncated,
        error_kind=response.error_kind,
        error_message=response.error_message,
    )


def _record(*, delivery: Delivery, url: str, started_at, request_headers, response: transport.Response) -> Attempt:
    number = delivery.attempt_count + 1
    attempt = attempt_row(delivery_id=delivery.id, number=number, url=url, started_at=started_at,
                          request_headers=request_headers, response=response)
    now = timezone.now()
    succeeded = response.ok and not response.error_kind
    bookkeeping = {
        "attempt_count": number,
        "last_status_code": response.status_code,
        "last_error": _summary(response),
        "locked_until": None,
    }
    with transaction.atomic():
        attempt.save()
        # Only a delivery still pending is moved on: a delete that cancelled it
        # while the request was in flight keeps its cancelled state (but still
        # counts the attempt, so attempt numbers stay unique).
        moved = Delivery.objects.filter(id=delivery.id, state=Delivery.State.PENDING).update(
            **bookkeeping, **_next_state(delivery, response, number=number, now=now)
        )
        if not moved:
            Delivery.objects.filter(id=delivery.id).update(**bookkeeping)
        pause_reason = health.endpoint_record(
            subscription=delivery.subscription, succeeded=succeeded, status_code=response.status_code, now=now
        )
    if pause_reason:
        health.endpoint_pause(subscription=delivery.subscription, reason=pause_reason)
    return attempt


def _next_state(delivery: Delivery, response: transport.Response, *, number: int, now) -> dict:
    """Return the state fields after this attempt: done, held (410 Gone), or due again."""
    if response.ok and not response.error_kind:
        return {"state": Delivery.State.SUCCEEDED, "completed_at": now, "next_attempt_at": None}
    if response.status_code == 410:
        # The endpoint says it is gone: the subscription is paused next, and
        # this delivery is held with the rest, to be sent on Resume.
        return {"state": Delivery.State.HELD, "next_attempt_at": None}
    due = retry.next_attempt_at(
        attempts_made=number - delivery.schedule_offset, now=now, minimum_delay=retry_after_seconds(response)
    )
    if due is None:
        return {"state": Delivery.State.FAILED, "completed_at": now, "next_attempt_at": None}
    # enqueued_at cleared: the sweeper enqueues it as soon as it is due.
    return {"next_attempt_at": due, "enqueued_at": None}


def _summary(response: transport.Response) -> str:
    if response.error_kind:
        return response.error_message[:300]
    if response.ok:
        return ""
    return f"HTTP {response.status_code}"


def retry_after_seconds(response: transport.Response) -> float | None:
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
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def _finish(delivery: Delivery, *, state: str, error: str = "") -> None:
    Delivery.objects.filter(id=delivery.id).update(
        state=state, locked_until=None, next_attempt_at=None, completed_at=timezone.now(), last_error=error
    )


def deliveries_sweep() -> int:
    """Enqueue due deliveries whose message is missing or overdue; return how many."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.WEBHOOKS_SWEEP_GRACE)
    with transaction.atomic():
        due = (
            Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale))
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .order_by("next_attempt_at")
        )
        rows = list(due.select_for_update(skip_locked=True, of=("self",))
                    .values_list("id", "subscription_id", "event__is_test")[:SWEEP_BATCH])
        ids = [r[0] for r in rows]
        if ids:
            Delivery.objects.filter(id__in=ids).update(enqueued_at=now)
    if ids:
        enqueue_deliveries(ids, endpoints=wake_endpoints(rows))
    return len(ids)



def delivery_redeliver(*, delivery: Delivery) -> bool:
    """Send a finished delivery again (same event id, a fresh retry schedule); return False if unfinished."""
    now = timezone.now()
    changed = (
        Delivery.objects.filter(id=delivery.id)
        .exclude(state__in=Delivery.UNFINISHED)
        .update(state=Delivery.State.PENDING, next_attempt_at=now, enqueued_at=now, completed_at=None,
                locked_until=None, schedule_offset=F("attempt_count"))
    )
    if changed:
        transaction.on_commit(lambda: enqueue_deliveries([delivery.id]))
    return bool(changed)


def deliveries_cancel(*, subscription: Subscription) -> int:
    """Cancel every unfinished delivery of a subscription; return how many."""
    return Delivery.objects.filter(subscription=subscription, state__in=Delivery.UNFINISHED).update(
        state=Delivery.State.CANCELLED, next_attempt_at=None, locked_until=None,
        completed_at=timezone.now(), last_error="Cancelled: the subscription was deleted.",
    )


def deliveries_hold(*, subscription: Subscription) -> int:
    """Hold the subscription's pending deliveries (on pause); return how many.

    A delivery whose request is in flight keeps its lease: its attempt is
    recorded, and the worker holds it at its next turn.
    """
    now = timezone.now()
    return (
        Delivery.objects.filter(subscription=subscription, state=Delivery.State.PENDING)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(state=Delivery.State.HELD, next_attempt_at=None, locked_until=None)
    )


def deliveries_release_held(*, subscription: Subscription) -> int:
    """Make held deliveries due now, oldest first, with a clean endpoint record; return how many.

    The endpoint's failures and breaker are forgotten: Resume is the operator
    saying the endpoint is fixed, so it is not paused again by its old failures.
    """
    now = timezone.now()
    health.endpoint_reset(subscription=subscription)
    rows = list(
        Delivery.objects.filter(subscription=subscription, state=Delivery.State.HELD)
        .order_by("created_at", "id")
        .values_list("id", "subscription_id", "event__is_test")
    )
    ids = [r[0] for r in rows]
    if ids:
        Delivery.objects.filter(id__in=ids, state=Delivery.State.HELD).update(
            state=Delivery.State.PENDING, next_attempt_at=now, enqueued_at=now
        )
        transaction.on_commit(lambda: enqueue_deliveries(ids, endpoints=wake_endpoints(rows)))
    return len(ids)

