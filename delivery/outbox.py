"""Recording an event: validate, serialise once, write the outbox, wake the endpoints on commit."""

import json
import logging
import uuid
from datetime import UTC

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from delivery import metrics, states, wakeups
from delivery.compiled import Compiled, Insert, Param
from delivery.models import Delivery, Event, webhook_id_for
from subscriptions.activity_data import activity_data_check
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
    activity_data_check(data)
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


_EVENT_FIELDS = [f for f in Event._meta.concrete_fields]
_INSERT_EVENT = Compiled(lambda: Insert(Event, [f.name for f in _EVENT_FIELDS],
                                        [Event(**{f.attname: Param(f.attname, f) for f in _EVENT_FIELDS})]))


def event_record(
    *,
    organisation,
    activity_type: str,
    data: dict,
    idempotency_key: str | None = None,
    is_test: bool = False,
    subscription: Subscription | None = None,
) -> Event:
    """Write one Event and one Delivery per matching subscription in the caller's transaction; return the Event.

    Two statements whatever the number of subscriptions: insert the event, then
    insert its deliveries from the matching subscriptions (INSERT ... SELECT).
    Their endpoints are woken once the caller's transaction commits; a rollback
    sends nothing. With an idempotency key already used by this organisation,
    returns that earlier Event instead (one more statement to look for it).
    `subscription` limits the delivery to that one (test sends).
    """
    now = timezone.now()
    event = Event(id=uuid.uuid4(), organisation=organisation, activity_type=activity_type, is_test=is_test,
                  idempotency_key=idempotency_key, created_at=now)
    event.body = serialise_body(event_id=event.id, activity_type=activity_type, created_at=now,
                                organisation=organisation, data=data, is_test=is_test)
    if idempotency_key is not None:
        existing = Event.objects.filter(organisation=organisation, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    with transaction.atomic(savepoint=False):
        winner = _event_insert(event)
        if winner is not event:  # an earlier event with this idempotency key
            return winner
        deliveries = states.deliveries_create(event=event, subscription_id=subscription.id if subscription else None)
    pending = [subscription_id for subscription_id, state in deliveries if state == Delivery.State.PENDING]
    transaction.on_commit(lambda: _committed(pending))
    return event


def _committed(pending: list) -> None:
    metrics.events_recorded(count=1)
    if pending:
        wakeups.endpoints_awaken(pending)


def _event_insert(event: Event) -> Event:
    """Insert the event; with an idempotency key, return the winner of a concurrent race."""
    values = {f.attname: getattr(event, f.attname) for f in _EVENT_FIELDS}
    event._state.adding, event._state.db = False, "default"  # a saved row, as if the ORM had saved it
    if event.idempotency_key is None:
        _INSERT_EVENT.run(**values)
        return event
    try:
        with transaction.atomic():
            _INSERT_EVENT.run(**values)
            return event
    except IntegrityError:
        return Event.objects.get(organisation_id=event.organisation_id, idempotency_key=event.idempotency_key)
