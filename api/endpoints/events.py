"""Ingest: apps that cannot send a Django signal record activities over HTTP, through record_activity.

The same validation and errors, the same outbox, the same transaction semantics as domain code:
an event and its deliveries are written in one transaction, and the endpoints are woken on commit.
`Idempotency-Key` (the organisation's idempotency key of record_activity): the same key with the same
body answers the event recorded the first time; with another body it is refused (422, as the IETF's
Idempotency-Key draft says). A batch is all or nothing; its i-th event uses the key `<key>:<i>`.
Each call adds its events to the key's tally (ApiKey.events_ingested), not to the trail.
"""

import json
import re

from django.db import transaction
from django.http import Http404
from django.utils import timezone
from ninja import Header, Router, Status

from api.auth import ANY, EVENTS, READ
from api.endpoints.deliveries import event_uuid
from api.problems import Problem, activity_error
from api.schemas import ActivityIn, ActivityTypeOut, BatchIn, BatchOut, EventDeliveriesOut, IngestedOut
from api.services import api_key_count_events
from delivery.models import Event
from delivery.selectors import event_deliveries, event_get
from subscriptions.activity import record_activity
from subscriptions.activity_types import ACTIVITY_TYPES, get_activity_type
from subscriptions.exceptions import ActivityError

router = Router(tags=["Events"])

MAX_IDEMPOTENCY_KEY = 200
VISIBLE_ASCII = re.compile(r"[\x20-\x7e]+")


def _same_request(event: Event, item: ActivityIn) -> bool:
    """Return whether the event recorded under an idempotency key is the one this request asks for."""
    return event.activity_type == item.type and json.loads(event.body)["data"] == item.data


def _ingested(event: Event, *, replayed: bool) -> dict:
    return {"id": event.webhook_id, "type": event.activity_type, "created_at": event.created_at,
            "replayed": replayed}


def _record(request, item: ActivityIn, *, idempotency_key: str | None, field: str = "") -> dict:
    """Record one activity for the key's organisation in the caller's transaction; return what to answer."""
    started = timezone.now()
    try:
        event = record_activity(organisation=request.auth.organisation, activity_type=item.type, data=item.data,
                                idempotency_key=idempotency_key)
    except ActivityError as exc:
        raise Problem(422, str(exc), errors=activity_error(exc, prefix=field)) from None
    replayed = event.created_at < started
    if replayed and not _same_request(event, item):
        raise Problem(422, "This Idempotency-Key was used for another event: a key recorded once answers only "
                           "the same type and data.", errors=[{"field": field + "data" if field else "Idempotency-Key",
                                                               "detail": f"The key recorded {event.webhook_id}."}])
    return _ingested(event, replayed=replayed)


def _checked_key(key: str | None) -> str | None:
    """Return the Idempotency-Key header, or None; 1 to 200 visible ASCII characters (and spaces), else 422."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY or not VISIBLE_ASCII.fullmatch(key):
        raise Problem(422, "The Idempotency-Key header must have 1 to 200 visible ASCII characters.",
                      errors=[{"field": "Idempotency-Key", "detail": "1 to 200 visible ASCII characters."}])
    return key


@router.post("/events", auth=EVENTS, response={201: IngestedOut, 200: IngestedOut}, summary="Record an activity")
def post_event(request, payload: ActivityIn, idempotency_key: str | None = Header(None, alias="Idempotency-Key")):
    """Record an activity for the key's organisation: 201 with its event id (200 when the Idempotency-Key
    had recorded it already)."""
    key = _checked_key(idempotency_key)
    with transaction.atomic():
        answer = _record(request, payload, idempotency_key=key)
        if not answer["replayed"]:
            api_key_count_events(api_key=request.auth, count=1)
    return Status(200 if answer["replayed"] else 201, answer)


@router.post("/events/batch", auth=EVENTS, response={201: BatchOut, 200: BatchOut},
             summary="Record up to 100 activities, all or nothing")
def post_events(request, payload: BatchIn, idempotency_key: str | None = Header(None, alias="Idempotency-Key")):
    """Record every activity or none: the first invalid one refuses the batch (its index in the error's field)."""
    key = _checked_key(idempotency_key)
    with transaction.atomic():
        answers = [_record(request, item, idempotency_key=f"{key}:{i}" if key else None, field=f"events.{i}.")
                   for i, item in enumerate(payload.events)]
        recorded = sum(not a["replayed"] for a in answers)
        if recorded:
            api_key_count_events(api_key=request.auth, count=recorded)
    return Status(201 if recorded else 200, {"events": answers})


@router.get("/events/{event_id}", auth=READ, response=EventDeliveriesOut, summary="Find an event's deliveries")
def read_event(request, event_id: str):
    """The event (evt_...) and its delivery to each of the organisation's webhooks."""
    parsed = event_uuid(event_id)
    event = event_get(organisation=request.auth.organisation, event_id=parsed) if parsed else None
    if event is None:
        raise Http404("No such event.")
    return {"event": {"id": event.webhook_id, "type": event.activity_type, "created_at": event.created_at,
                      "test": event.is_test},
            "deliveries": event_deliveries(event=event)}


catalogue = Router(tags=["Activity types"])


def _activity_type(kind) -> dict:
    return {"code": kind.code, "label": kind.label, "category": kind.category, "description": kind.description,
            "data_schema": kind.schema, "sample": kind.sample}


@catalogue.get("/activity-types", auth=ANY, response=list[ActivityTypeOut], summary="List activity types")
def list_activity_types(request):
    """Every activity type, with the JSON Schema of its `data` and a sample."""
    return [_activity_type(kind) for kind in ACTIVITY_TYPES.values()]


@catalogue.get("/activity-types/{code}", auth=ANY, response=ActivityTypeOut, summary="Read an activity type")
def read_activity_type(request, code: str):
    kind = get_activity_type(code)
    if kind is None:
        raise Http404("No such activity type.")
    return _activity_type(kind)


