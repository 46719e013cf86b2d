"""The Delivery Log over the API: list with filters and a cursor, one delivery with its attempts, redeliver, recover."""

import re
import uuid

from django.http import Http404
from ninja import Query, Router, Status

from api.auth import READ, WRITE
from api.endpoints.subscriptions import subscription_or_404
from api.problems import Problem
from api.schemas import CountOut, DeliveryDetail, DeliveryFilters, DeliveryPage, RecoverIn, RedeliverOut
from delivery import services
from delivery.selectors import delivery_get, delivery_log
from subscriptions.activity_types import get_activity_type

router = Router(tags=["Deliveries"])

EVENT_ID = re.compile(r"^evt_([0-9a-f]{32})$")


def event_uuid(text: str) -> uuid.UUID | None:
    """Return the event's uuid from its public id (evt_ and 32 hex digits), or None."""
    match = EVENT_ID.match(text.strip().lower())
    return uuid.UUID(hex=match.group(1)) if match else None


def _delivery_or_404(subscription, delivery_id):
    delivery = delivery_get(subscription=subscription, delivery_id=delivery_id)
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery


@router.get("/subscriptions/{subscription_id}/deliveries", auth=READ, response=DeliveryPage,
            summary="List a webhook's deliveries")
def list_deliveries(request, subscription_id: uuid.UUID, filters: Query[DeliveryFilters]):
    """The Delivery Log, newest first, filtered; `next_cursor` gives the next, older page."""
    subscription = subscription_or_404(request, subscription_id)
    errors = []
    event_id = None
    if filters.event_id:
        event_id = event_uuid(filters.event_id)
        if event_id is None:
            errors.append({"field": "event_id", "detail": "Enter a whole event id: evt_ and 32 hex digits."})
    if filters.activity_type and get_activity_type(filters.activity_type) is None:
        errors.append({"field": "activity_type", "detail": f"Unknown activity type: {filters.activity_type!r}."})
    if filters.since and filters.until and filters.until <= filters.since:
        errors.append({"field": "until", "detail": "Choose a time after `since`."})
    if errors:
        raise Problem(422, "The request has invalid fields: see errors.", errors=errors)
    page = delivery_log(subscription=subscription, state=filters.state, activity_type=filters.activity_type,
                        cursor=filters.cursor, limit=filters.limit, event_id=event_id, since=filters.since,
                        until=filters.until)
    if page.cursor_error:
        raise Problem(422, "The cursor cannot be used.", errors=[{"field": "cursor", "detail": page.cursor_error}])
    return {"data": page.deliveries, "next_cursor": page.older_cursor}


@router.get("/subscriptions/{subscription_id}/deliveries/{delivery_id}", auth=READ, response=DeliveryDetail,
            summary="Read a delivery and its attempts")
def read_delivery(request, subscription_id: uuid.UUID, delivery_id: uuid.UUID):
    return _delivery_or_404(subscription_or_404(request, subscription_id), delivery_id)


@router.post("/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver", auth=WRITE,
             response={202: RedeliverOut}, summary="Redeliver a finished delivery")
def redeliver(request, subscription_id: uuid.UUID, delivery_id: uuid.UUID):
    """Send a finished delivery again: the same event id, signed with the current secret, a fresh schedule."""
    subscription = subscription_or_404(request, subscription_id)
    delivery = _delivery_or_404(subscription, delivery_id)
    if not subscription.is_active:
        raise Problem(409, "This webhook is paused: resume it to redeliver.")
    if not services.delivery_redeliver(delivery=delivery, by=request.auth):
        raise Problem(409, "This delivery is still in progress; it can be redelivered once it has finished.")
    return Status(202, {"redelivered": True})


@router.post("/subscriptions/{subscription_id}/recover", auth=WRITE, response={202: CountOut},
             summary="Retry the failed deliveries since a time")
def recover(request, subscription_id: uuid.UUID, payload: RecoverIn):
    """Send again every failed delivery created since `since` (held until resume on a paused webhook)."""
    subscription = subscription_or_404(request, subscription_id)
    return Status(202, {"count": services.deliveries_recover_since(subscription=subscription, since=payload.since,
                                                                   by=request.auth)})
