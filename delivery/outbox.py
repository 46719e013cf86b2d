"""Recording an event: validate, serialise once, write the outbox, enqueue on commit."""

import json
import logging
import uuid
from datetime import UTC

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from delivery import wakeups
from delivery.models import Delivery, Event, webhook_id_for
from subscriptions.activity_types import get_activity_type
from subscriptions.exceptions import InvalidActivityData, UnknownActivityType
from subscriptions.models import Subscription

logger = logging.getLogger(__name__)


def serialise_body(*, event_id: uuid.UUID, activity_type: str, created_at, organisation, data, is_test: bool) -> str:
    """Return the JSON body of an event, or raise InvalidActivityData."""
    if get_activity_type(activity_type) is None:
        raise UnknownActivityType(f"Unknown activity type {activity_type!r}; see subscriptions.activity_types.")
    if not isinstance(data, dict):
        raise InvalidActivityData(f"Activity data must be a JSON object (a dict), not {type(data).__name__}.")
    payload = {
        "id": webhook_id_for(event_id),
        "type": activity_type,
        "timestamp": created_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "organisation": organisation.slug,
        "data": data,
    }
    if is_test:
        payload["test"] = True
    try:
        body = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidActivityData(f"Activity data is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise InvalidActivityData("Activity data is nested too deeply to serialise.") from None
    limit = settings.WEBHOOKS_MAX_PAYLOAD_BYTES
    if len(body) > limit:
        raise InvalidActivityData(f"Activity data is too large: {len(body):,} bytes, the limit is {limit:,} bytes.")
    return body


def event_record(
    *,
    organisation,
    activity_type: str,
    data: dict,
    idempotency_key: str | None = None,
    is_test: bool = False,
    subscription: Subscription | None = None,
) -> Event:
    """Write one Event and one Delivery per matching subscription, in the caller's transaction.

    Costs one statement on PostgreSQL whatever the number of subscriptions
    (elsewhere, or with an idempotency key or a chosen subscription, three:
    insert event, select subscriptions, bulk insert deliveries). With an idempotency key
    already used by this organisation, returns that earlier Event instead.
    `subscription` limits the delivery to that one subscription (test sends).
    """
    now = timezone.now()
    event_id = uuid.uuid4()
    body = serialise_body(event_id=event_id, activity_type=activity_type, created_at=now,
                          organisation=organisation, data=data, is_test=is_test)
    if idempotency_key is not None:
        existing = Event.objects.filter(organisation=organisation, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    if subscription is None and idempotency_key is None and connection.vendor == "postgresql":
        return _record_in_one_statement(id=event_id, organisation=organisation, activity_type=activity_type,
                                        body=body, is_test=is_test, created_at=now)
    with transaction.atomic(savepoint=False):
        event = _event_insert(
            id=event_id, organisation=organisation, activity_type=activity_type, body=body,
            is_test=is_test, idempotency_key=idempotency_key, created_at=now,
        )
        if event.id != event_id:  # an earlier event with this idempotency key
            return event
        _deliveries_insert(event=event, subscription=subscription)
    return event


# The event and its deliveries in one round trip: the caller's transaction is the
# domain's, and this is the whole of what recording adds to it (plus the commit).
_RECORD = """
WITH event AS (
    INSERT INTO delivery_event (id, organisation_id, activity_type, body, is_test, idempotency_key, created_at)
    VALUES (%(id)s, %(organisation)s, %(type)s, %(body)s, %(test)s, NULL, %(now)s)
    RETURNING id
)
INSERT INTO delivery_delivery (id, event_id, subscription_id, activity_type, state, attempt_count, schedule_offset,
                               next_attempt_at, enqueued_at, last_error, created_at)
SELECT gen_random_uuid(), event.id, s.id, %(type)s,
       CASE WHEN s.state = %(active)s THEN %(pending)s ELSE %(held)s END, 0, 0,
       CASE WHEN s.state = %(active)s THEN %(now)s::timestamptz END,
       CASE WHEN s.state = %(active)s THEN %(now)s::timestamptz END, '', %(now)s
FROM event, subscriptions_subscription AS s
JOIN subscriptions_subscribedactivitytype AS t ON t.subscription_id = s.id
WHERE s.organisation_id = %(organisation)s AND s.deleted_at IS NULL AND t.activity_type = %(type)s
RETURNING id, subscription_id, state
"""


def _record_in_one_statement(*, id, organisation, activity_type, body, is_test, created_at) -> Event:
    """Insert the event and one delivery per matching subscription in one statement (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(_RECORD, {
            "id": id, "organisation": organisation.id, "type": activity_type, "body": body, "test": is_test,
            "now": created_at, "active": Subscription.State.ACTIVE.value, "pending": Delivery.State.PENDING.value,
            # A paused subscription's events are held, never dropped.
            "held": Delivery.State.HELD.value,
        })
        rows = cursor.fetchall()
    event = Event(id=id, organisation=organisation, activity_type=activity_type, body=body, is_test=is_test,
                  idempotency_key=None, created_at=created_at)
    event._state.adding, event._state.db = False, connection.alias
    _enqueue_on_commit([(d, sub_id) for d, sub_id, state in rows if state == Delivery.State.PENDING], is_test=is_test)
    return event


def _event_insert(**fields) -> Event:
    """Insert the event; with an idempotency key, return the winner of a concurrent race."""
    key = fields["idempotency_key"]
    if key is None:
        return Event.objects.create(**fields)
    try:
        with transaction.atomic():
            return Event.objects.create(**fields)
    except IntegrityError:
        return Event.objects.get(organisation=fields["organisation"], idempotency_key=key)


def _deliveries_insert(*, event: Event, subscription: Subscription | None) -> None:
    if subscription is not None:
        targets = [(subscription.id, subscription.state)]
    else:
        targets = list(
            Subscription.objects.filter(
                organisation_id=event.organisation_id,
                deleted_at__isnull=True,
                activity_types__activity_type=event.activity_type,
            ).values_list("id", "state")
        )
    if not targets:
        return
    now = event.created_at
    active = Subscription.State.ACTIVE
    deliveries = [
        Delivery(
            event=event, subscription_id=sub_id, activity_type=event.activity_type, created_at=now,
            # A paused subscription's events are held, never dropped.
            state=Delivery.State.PENDING if state == active else Delivery.State.HELD,
            next_attempt_at=now if state == active else None,
            enqueued_at=now if state == active else None,
        )
        for sub_id, state in targets
    ]
    Delivery.objects.bulk_create(deliveries)
    _enqueue_on_commit([(d.id, d.subscription_id) for d in deliveries if d.state == Delivery.State.PENDING],
                       is_test=event.is_test)


def _enqueue_on_commit(pending: list[tuple], *, is_test: bool) -> None:
    """Enqueue these (delivery id, subscription id) once the caller's transaction commits."""
    if pending:
        ids = [d for d, _ in pending]
        endpoints = wake_endpoints([(d, sub_id, is_test) for d, sub_id in pending])
        transaction.on_commit(lambda: enqueue_deliveries(ids, endpoints=endpoints))


def enqueue_deliveries(delivery_ids, *, endpoints=None) -> int:
    """Hand deliveries to the broker; return how many messages were published.

    `endpoints` gives each delivery's subscription id (None: this one needs its
    own message, as a test send does). With coalesced wake-ups
    (delivery.wakeups) an endpoint gets one message, and only if no sender is
    queued or running for it already; that sender drains the rest. Without
    `endpoints`, every delivery gets its own message. A broker that is down
    loses nothing: the rows stay due and the sweeper enqueues them again once it can.
    """
    from delivery.tasks import deliver  # tasks import services; keep the import one-way at load time

    ids = list(delivery_ids)
    if endpoints is not None and wakeups.enabled():
        endpoints = list(endpoints)
        claimed = wakeups.endpoints_claim(e for e in endpoints if e is not None)
        chosen = []
        for delivery_id, endpoint in zip(ids, endpoints, strict=True):
            if endpoint is None:
                chosen.append(delivery_id)
            elif endpoint in claimed:
                claimed.discard(endpoint)  # the first of each endpoint stands for the others
                chosen.append(delivery_id)
        ids = chosen
    sent = 0
    for delivery_id in ids:
        try:
            deliver.apply_async(args=[str(delivery_id)], retry=False)
            sent += 1
        except Exception:  # noqa: BLE001
            logger.warning("Broker unavailable; %d deliveries left for the sweeper", len(ids) - sent)
            break
    return sent


def wake_endpoints(rows) -> list:
    """Return the endpoint of each (delivery id, subscription id, is test) row, None for test sends.

    For enqueue_deliveries: a test send always gets its own message (the
    senders that drain an endpoint leave test sends alone).
    """
    return [None if is_test else subscription_id for _, subscription_id, is_test in rows]
