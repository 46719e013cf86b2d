"""Administration > Webhooks: the list, create, the one-time secret, detail, edit, and the actions.

Reads go through selectors, writes through services; every view is scoped to
the signed-in user's organisation (see permissions.py).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from delivery.models import Delivery
from delivery.selectors import delivery_log, subscription_card_stats
from delivery.services import deliveries_recover_since
from organisations.selectors import membership_for_user
from subscriptions import services
from subscriptions.activity_types import get_activity_type
from subscriptions.forms import RecoverForm, SubscriptionForm
from subscriptions.models import TrailEntry
from subscriptions.permissions import membership_or_404, require_admin, subscription_view
from subscriptions.selectors import activity_codes
from subscriptions.selectors import subscription_list as select_subscriptions
from subscriptions.signing_secrets import decrypt_secret, encrypt_secret

TRAIL_LIMIT = 50


def _deliveries(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _secret_key(subscription) -> str:
    return f"webhooks:secret:{subscription.id}"


def _hand_over_secret(request, subscription, secret: str) -> None:
    """Keep the new secret for the next page only, encrypted even in the session store."""
    request.session[_secret_key(subscription)] = encrypt_secret(secret)


@login_required
@require_GET
def subscription_list(request):
    membership = membership_for_user(user=request.user)
    request.membership = membership
    subscriptions = list(select_subscriptions(organisation=membership.organisation)) if membership else []
    stats = subscription_card_stats(subscriptions=subscriptions)
    cards = [{"subscription": s, "stats": stats[s.id], "types": activity_codes(s)} for s in subscriptions]
    return render(request, "subscriptions/list.html", {"cards": cards})


@login_required
@require_http_methods(["GET", "POST"])
def subscription_create(request):
    membership = membership_or_404(request)
    require_admin(membership)
    form = SubscriptionForm(data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subscription, secret = services.subscription_create(
                organisation=membership.organisation, url=form.cleaned_data["url"],
                activity_types=form.cleaned_data["activity_types"],
                description=form.cleaned_data["description"], created_by=request.user,
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            _hand_over_secret(request, subscription, secret)
            return redirect("subscriptions:secret", subscription_id=subscription.id)
    return render(request, "subscriptions/form.html", {"form": form, "creating": True})


@never_cache
@require_GET
@subscription_view(admin=True)
def subscription_secret(request, subscription):
    """Show the signing secret once: it leaves the session as this page renders, and no cache keeps it."""
    token = request.session.pop(_secret_key(subscription), None)
    secret = decrypt_secret(token) if token else None
    return render(request, "subscriptions/secret.html", {"subscription": subscription, "secret": secret})


@require_GET
@subscription_view()
def subscription_detail(request, subscription):
    page = delivery_log(
        subscription=subscription, state=request.GET.get("state"), activity_type=request.GET.get("type"),
        cursor=request.GET.get("before"),
    )
    trail = TrailEntry.objects.filter(subscription=subscription).select_related("actor")[:TRAIL_LIMIT]
    codes = activity_codes(subscription)
    return render(request, "subscriptions/detail.html", {
        "subscription": subscription,
        "types": [get_activity_type(c) for c in codes],
        "log": page,
        "log_filters": _log_filters(request, codes),
        "trail": trail,
        "recover_form": RecoverForm(),
    })


@require_GET
@subscription_view()
def subscription_log(request, subscription):
    """The Delivery Log alone, for the page's live refresh."""
    page = delivery_log(
        subscription=subscription, state=request.GET.get("state"), activity_type=request.GET.get("type"),
        cursor=request.GET.get("before"),
    )
    return render(request, "subscriptions/_delivery_log.html", {
        "subscription": subscription, "log": page, "log_filters": _log_filters(request, activity_codes(subscription)),
    })


def _log_filters(request, codes: list[str]) -> dict:
    state = request.GET.get("state") or ""
    type_ = request.GET.get("type") or ""
    return {
        "state": state if state in Delivery.State.values else "",
        "type": type_,
        "before": request.GET.get("before") or "",
        "states": Delivery.State.choices,
        "types": [(c, get_activity_type(c).label) for c in codes if get_activity_type(c)],
        "active": bool(state or type_),
    }


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def subscription_edit(request, subscription):
    form = SubscriptionForm.for_subscription(subscription, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.subscription_update(
                subscription=subscription, url=form.cleaned_data["url"],
                activity_types=form.cleaned_data["activity_types"],
                description=form.cleaned_data["description"], by=request.user,
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, "Saved. The changes apply from the next event.")
            return redirect("subscriptions:detail", subscription_id=subscription.id)
    return render(request, "subscriptions/form.html", {"form": form, "subscription": subscription})


@require_POST
@subscription_view(admin=True)
def subscription_test(request, subscription):
    code = request.POST.get("activity_type", "")
    if code not in activity_codes(subscription):
        return HttpResponseBadRequest("Choose one of this webhook's activity types.")
    event = services.subscription_send_test(subscription=subscription, activity_type=code, by=request.user)
    messages.success(request, f"Test sent: {get_activity_type(code).label} ({event.webhook_id}). "
                              "Its result appears in the Delivery Log.")
    return redirect(reverse("subscriptions:detail", args=[subscription.id]) + "#delivery-log")


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def subscription_regenerate(request, subscription):
    if request.method == "POST":
        secret = services.subscription_regenerate_secret(subscription=subscription, by=request.user)
        _hand_over_secret(request, subscription, secret)
        return redirect("subscriptions:secret", subscription_id=subscription.id)
    return render(request, "subscriptions/confirm_regenerate.html", {"subscription": subscription})


@require_POST
@subscription_view(admin=True)
def subscription_pause(request, subscription):
    if subscription.is_active:
        services.subscription_pause(subscription=subscription, by=request.user)
        messages.success(request, "Paused. New events are held, not sent, until you resume.")
    return redirect("subscriptions:detail", subscription_id=subscription.id)


@require_POST
@subscription_view(admin=True)
def subscription_resume(request, subscription):
    if not subscription.is_active:
        released = services.subscription_resume(subscription=subscription, by=request.user)
        held = (f" {_deliveries(released, 'held delivery is', 'held deliveries are')} being sent, oldest first."
                if released else "")
        messages.success(request, "Resumed." + held)
    return redirect("subscriptions:detail", subscription_id=subscription.id)


@require_POST
@subscription_view(admin=True)
def subscription_recover(request, subscription):
    """Retry the failed deliveries created since the moment given (UTC)."""
    form = RecoverForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter the date and time from which to retry failed deliveries (UTC).")
        return redirect("subscriptions:detail", subscription_id=subscription.id)
    count = deliveries_recover_since(subscription=subscription, since=form.cleaned_data["since"], by=request.user)
    if count:
        verb = "sent again" if subscription.is_active else "held until you resume"
        messages.success(request, f"{_deliveries(count, 'failed delivery', 'failed deliveries')} {verb}.")
    else:
        messages.info(request, "No failed deliveries since then.")
    return redirect(reverse("subscriptions:detail", args=[subscription.id]) + "#delivery-log")


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def subscription_delete(request, subscription):
    if request.method == "POST":
        cancelled = services.subscription_delete(subscription=subscription, by=request.user)
        note = (f" {_deliveries(cancelled, 'pending delivery was', 'pending deliveries were')} cancelled."
                if cancelled else "")
        messages.success(request, f"Deleted the webhook to {subscription.url}.{note}")
        return redirect("subscriptions:list")
    return render(request, "subscriptions/confirm_delete.html", {"subscription": subscription})
