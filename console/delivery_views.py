"""A delivery of the log, opened: each attempt in full, and Redeliver."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from console.permissions import subscription_view
from delivery import services
from delivery.body_display import body_shown, headers_shown
from delivery.health_view import delivery_waits, endpoint_health_view
from delivery.selectors import delivery_get


def _delivery_or_404(subscription, delivery_id):
    delivery = delivery_get(subscription=subscription, delivery_id=delivery_id)
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery


@require_GET
@subscription_view()
def delivery_detail(request, subscription, delivery_id):
    delivery = _delivery_or_404(subscription, delivery_id)
    attempts = list(delivery.attempts.order_by("number"))
    for attempt in attempts:
        # Bounded whatever was stored: pretty JSON within depth and size limits, else raw text, capped.
        attempt.response_body_shown = body_shown(text=attempt.response_body, escaped=attempt.response_body_escaped)
        attempt.response_headers_shown = headers_shown(headers=attempt.response_headers)
        attempt.request_headers_shown = headers_shown(headers=attempt.request_headers)
    health = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    return render(request, "console/delivery/detail.html", {
        "subscription": subscription,
        "delivery": delivery,
        "wait": delivery_waits(subscription=subscription, deliveries=[delivery], health=health).get(delivery.id),
        "health": health,
        "attempts": attempts,
        "request_body": body_shown(text=delivery.event.body),
    })


@require_POST
@subscription_view(admin=True)
def delivery_redeliver(request, subscription, delivery_id):
    delivery = _delivery_or_404(subscription, delivery_id)
    if not subscription.is_active:
        messages.error(request, "This webhook is paused: resume it to redeliver.")
    elif services.delivery_redeliver(delivery=delivery, by=request.user):
        messages.success(request, "Redelivering: the same event id, signed with the current secret.")
    else:
        messages.info(request, "This delivery is still in progress; it can be redelivered once it has finished.")
    return redirect("console:delivery_detail", subscription_id=subscription.id, delivery_id=delivery.id)
