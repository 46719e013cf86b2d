"""Recording an event: validate, serialise once, write the outbox, enqueue on commit."""

import json
import logging
import uuid
from datetime import UTC

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

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

    Costs three queries whatever the number of subscriptions (insert event,
    select subscriptions, bulk insert deliveries). With an idempotency key
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
    with transaction.atomic(savepoint=False):
        event = _event_insert(
            id=event_id, organisation=organisation, activity_type=activity_type, body=body,
            is_test=is_test, idempotency_key=idempotency_key, created_at=now,
        )
        if event.id != event_id:  # an earlier event with this idempotency key
            return event
        _deliveries_insert(event=event, subscription=subscription)
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
    pending = [d.id for d in deliveries if d.state == Delivery.State.PENDING]
    if pending:
        transaction.on_commit(lambda: enqueue_deliveries(pending))


def enqueue_deliveries(delivery_ids) -> int:
    """Hand deliveries to the broker; return how many were handed over.

    A broker that is down loses nothing: the rows stay due and the sweeper
    enqueues them again once it can.
    """
    from delivery.tasks import deliver  # tasks import services; keep the import one-way at load time

    sent = 0
    for delivery_id in delivery_ids:
        try:
            deliver.apply_async(args=[str(delivery_id)], retry=False)
            sent += 1
        except Exception:  # noqa: BLE001
            logger.warning("Broker unavailable; %d deliveries left for the sweeper", len(delivery_ids) - sent)
            break
    return sent
