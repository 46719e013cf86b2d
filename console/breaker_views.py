"""Try now: on an endpoint whose breaker is open, send the next delivery at once as its probe, and say what happened.

The probe goes the one sending path (delivery.sender.endpoint_try_now): one request, recorded as an
attempt like any other; a success closes the breaker and the waiting deliveries follow.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from console.permissions import subscription_view
from delivery.health_view import endpoint_health_view
from delivery.models import webhook_id_for
from delivery.sender import endpoint_try_now


def _outcome(response) -> str:
    if response.status_code is not None:
        return f"HTTP {response.status_code} in {response.duration_ms} ms"
    return response.error_message or "no answer"


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def subscription_try_now(request, subscription):
    """GET: confirm; POST: send the probe now (only while the webhook is active and its breaker open)."""
    health = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    if not subscription.is_active or not health.breaker_open:
        if request.method == "POST":
            messages.info(request, "The breaker of this endpoint is not open: its deliveries go as usual."
                          if subscription.is_active else "This webhook is paused: resume it to send.")
            return redirect("console:subscription_detail", subscription_id=subscription.id)
        return render(request, "console/subscriptions/confirm_try_now.html",
                      {"subscription": subscription, "health": health, "can_try": False})
    if request.method == "GET":
        return render(request, "console/subscriptions/confirm_try_now.html",
                      {"subscription": subscription, "health": health, "can_try": True})
    sent = endpoint_try_now(subscription_id=subscription.id)
    if sent is None:
        messages.info(request, "Nothing was sent: no delivery is due now (one waiting for its retry goes at its "
                               "time), or a probe or every sender of this endpoint is busy. Try again in a moment.")
    elif sent.response.ok:
        messages.success(request, f"Sent {webhook_id_for(sent.delivery.event_id)} now: "
                                  f"{_outcome(sent.response)}. The breaker is closed; the waiting deliveries "
                                  "are being sent.")
    else:
        messages.error(request, f"Sent {webhook_id_for(sent.delivery.event_id)} now: {_outcome(sent.response)}. "
                                "The breaker is open again, for longer; the Health line says when the next "
                                "probe goes.")
    return redirect("console:subscription_detail", subscription_id=subscription.id)
