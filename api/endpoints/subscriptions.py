"""Webhooks (subscriptions): the same services and selectors as the pages, scoped to the key's organisation."""

import uuid
from datetime import timedelta

from django.db import transaction
from django.http import Http404
from ninja import Router, Status

from api.auth import READ, WRITE
from api.problems import Problem
from api.schemas import (
    DeletedOut,
    EventOut,
    RegenerateIn,
    ResumedOut,
    SecretOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionWithSecret,
    TestIn,
)
from subscriptions import services
from subscriptions.models import Subscription
from subscriptions.selectors import activity_codes, subscription_get, subscription_list, subscription_with_url

router = Router(tags=["Webhooks"])


def subscription_or_404(request, subscription_id: uuid.UUID) -> Subscription:
    """Return the key's organisation's live webhook with that id; another organisation's is 404, like the pages."""
    subscription = subscription_get(organisation=request.auth.organisation, subscription_id=subscription_id)
    if subscription is None:
        raise Http404("No such webhook.")
    return subscription


def _not_a_surprise_duplicate(organisation, url: str, allowed: bool, exclude=None) -> None:
    other = subscription_with_url(organisation=organisation, url=url, exclude=exclude)
    if other is not None and not allowed:
        raise Problem(409, "This organisation already has a webhook to this URL: every event it selects would be "
                           "sent twice. Send allow_duplicate_url: true to add it anyway.",
                      errors=[{"field": "url", "detail": f"The webhook {other.id} has this URL."}])


def _fresh(subscription: Subscription) -> Subscription:
    """Return the subscription read again with its activity types, as the list reads it."""
    return subscription_get(organisation=subscription.organisation, subscription_id=subscription.id)


@router.get("/subscriptions", auth=READ, response=list[SubscriptionOut], summary="List webhooks")
def list_subscriptions(request):
    """The organisation's live webhooks, newest first."""
    return list(subscription_list(organisation=request.auth.organisation))


@router.post("/subscriptions", auth=WRITE, response={201: SubscriptionWithSecret}, summary="Create a webhook")
def create_subscription(request, payload: SubscriptionIn):
    """Create a webhook; the answer holds its signing secret, the only time it is shown."""
    organisation = request.auth.organisation
    _not_a_surprise_duplicate(organisation, payload.url, payload.allow_duplicate_url)
    subscription, secret = services.subscription_create(
        organisation=organisation, url=payload.url, activity_types=payload.activity_types,
        description=payload.description, created_by=request.auth, timeout_seconds=payload.timeout_seconds,
        max_per_second=payload.max_per_second, ordered=payload.ordered)
    created = _fresh(subscription)
    created.secret = secret
    return Status(201, created)


@router.get("/subscriptions/{subscription_id}", auth=READ, response=SubscriptionOut, summary="Read a webhook")
def read_subscription(request, subscription_id: uuid.UUID):
    return subscription_or_404(request, subscription_id)


@router.patch("/subscriptions/{subscription_id}", auth=WRITE, response=SubscriptionOut, summary="Change a webhook")
def update_subscription(request, subscription_id: uuid.UUID, payload: SubscriptionPatch):
    """Change the URL, activity types, description, custom headers or receiver controls (only the fields sent);
    from the next event."""
    subscription = subscription_or_404(request, subscription_id)
    url = payload.url if payload.url is not None else subscription.url
    if payload.url is not None:
        _not_a_surprise_duplicate(subscription.organisation, url, payload.allow_duplicate_url, exclude=subscription)
    with transaction.atomic():  # the fields and the headers are saved together, or neither
        controls = payload.controls()
        if (payload.url is not None or payload.activity_types is not None or payload.description is not None
                or controls):
            services.subscription_update(
                subscription=subscription, url=url,
                activity_types=payload.activity_types or activity_codes(subscription),
                description=payload.description, by=request.auth, controls=controls)
        if payload.custom_headers is not None:
            services.subscription_set_headers(subscription=subscription, by=request.auth,
                                              headers=[h.dict() for h in payload.custom_headers])
    return _fresh(subscription)


@router.delete("/subscriptions/{subscription_id}", auth=WRITE, response=DeletedOut, summary="Delete a webhook")
def delete_subscription(request, subscription_id: uuid.UUID):
    """Delete: unfinished deliveries are cancelled, none are created any more."""
    subscription = subscription_or_404(request, subscription_id)
    return {"cancelled": services.subscription_delete(subscription=subscription, by=request.auth)}


@router.post("/subscriptions/{subscription_id}/pause", auth=WRITE, response=SubscriptionOut, summary="Pause")
def pause_subscription(request, subscription_id: uuid.UUID):
    """Pause: new and pending events are held, not sent, until resume. Pausing a paused webhook changes nothing."""
    subscription = subscription_or_404(request, subscription_id)
    if subscription.is_active:
        services.subscription_pause(subscription=subscription, by=request.auth)
    return _fresh(subscription)


@router.post("/subscriptions/{subscription_id}/resume", auth=WRITE, response=ResumedOut, summary="Resume")
def resume_subscription(request, subscription_id: uuid.UUID):
    """Resume and send what was held, oldest first. Resuming an active webhook changes nothing."""
    subscription = subscription_or_404(request, subscription_id)
    released = 0 if subscription.is_active else services.subscription_resume(subscription=subscription,
                                                                               by=request.auth)
    return {"released": released}


@router.post("/subscriptions/{subscription_id}/regenerate-secret", auth=WRITE, response=SecretOut,
             summary="Regenerate the signing secret")
def regenerate_secret(request, subscription_id: uuid.UUID, payload: RegenerateIn | None = None):
    """Replace the signing secret; the answer holds the new one, the only time it is shown."""
    subscription = subscription_or_404(request, subscription_id)
    hours = payload.overlap_hours if payload else 0
    secret = services.subscription_regenerate_secret(subscription=subscription, by=request.auth,
                                                     overlap=timedelta(hours=hours) if hours else None)
    return {"secret": secret, "old_secret_signs_until": subscription.old_secret_signs_until}


@router.post("/subscriptions/{subscription_id}/test", auth=WRITE, response={202: EventOut},
             summary="Send a test event")
def send_test(request, subscription_id: uuid.UUID, payload: TestIn):
    """Send the type's sample (or `data`, checked against its schema) marked "test": true, to this webhook only."""
    subscription = subscription_or_404(request, subscription_id)
    if payload.activity_type not in activity_codes(subscription):
        raise Problem(422, "Choose one of this webhook's activity types.",
                      errors=[{"field": "activity_type", "detail": "This webhook does not receive this type."}])
    event = services.subscription_send_test(subscription=subscription, activity_type=payload.activity_type,
                                            data=payload.data, by=request.auth)
    return Status(202, {"id": event.webhook_id, "type": event.activity_type, "created_at": event.created_at,
                        "test": True})
