"""Administration > Webhooks: create, the one-time secret, detail, edit, and the actions (the list: list_views).

Reads go through selectors, writes through services; every view is scoped to
the signed-in user's organisation (see permissions.py).
"""

from cryptography.fernet import InvalidToken
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.forms import LogFilterForm, RecoverForm, RegenerateForm, SubscriptionForm, TestForm
from console.header_forms import ADD_HEADER, SubscriptionEditForm
from console.permissions import membership_or_404, require_admin, subscription_view
from delivery.bulk import BULK_LIMIT
from delivery.charts import chart_range, endpoint_charts, endpoint_hours
from delivery.health_view import count_shown, delivery_waits, endpoint_health_view, order_moved_past
from delivery.selectors import (
    LogPage,
    deliveries_failed_since_count,
    deliveries_unfinished_count,
    delivery_log,
)
from delivery.services import deliveries_recover_since
from subscriptions import services
from subscriptions.activity_types import get_activity_type
from subscriptions.models import TrailEntry
from subscriptions.selectors import activity_codes, subscription_with_url
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
@require_http_methods(["GET", "POST"])
def subscription_create(request):
    membership = membership_or_404(request)
    require_admin(membership)
    if ADD_HEADER in request.POST:
        form = SubscriptionEditForm.row_added(request.POST, stored_headers=[])
        return render(request, "console/subscriptions/form.html", {"form": form, "creating": True})
    form = SubscriptionEditForm(data=request.POST or None, stored_headers=[])
    if request.method == "POST" and form.is_valid() and _not_a_surprise_duplicate(form, membership.organisation):
        try:
            with transaction.atomic():  # the webhook and its headers are created together, or neither
                subscription, secret = services.subscription_create(
                    organisation=membership.organisation, url=form.cleaned_data["url"],
                    activity_types=form.cleaned_data["activity_types"],
                    description=form.cleaned_data["description"], created_by=request.user, **form.controls(),
                )
                if form.cleaned_data["custom_headers"]:
                    services.subscription_set_headers(subscription=subscription,
                                                      headers=form.cleaned_data["custom_headers"], by=request.user)
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            _hand_over_secret(request, subscription, secret)
            return redirect("console:subscription_secret", subscription_id=subscription.id)
    return render(request, "console/subscriptions/form.html", {"form": form, "creating": True})


@never_cache
@require_GET
@subscription_view(admin=True)
def subscription_secret(request, subscription):
    """Show the signing secret once: it leaves the session as this page renders, and no cache keeps it."""
    token = request.session.pop(_secret_key(subscription), None)
    try:
        secret = decrypt_secret(token) if token else None
    except InvalidToken:  # its key was removed between the two pages: as lost as a secret already shown
        secret = None
    return render(request, "console/subscriptions/secret.html", {"subscription": subscription, "secret": secret})


@require_GET
@subscription_view()
def subscription_detail(request, subscription):
    trail = TrailEntry.objects.filter(subscription=subscription).select_related("actor")[:TRAIL_LIMIT]
    codes = activity_codes(subscription)
    health = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    range_key = chart_range(request.GET.get("range"))
    return render(request, "console/subscriptions/detail.html", {
        "subscription": subscription,
        "types": [get_activity_type(c) for c in codes],
        "health": health,
        "charts": endpoint_charts(hours=endpoint_hours(subscription=subscription, range_key=range_key),
                                  range_key=range_key),
        "chart_range": range_key,
        **_log_context(request, subscription, codes, health=health),
        "trail": trail,
        "recover_form": RecoverForm(),
        "moved_past": order_moved_past(subscription=subscription),
    })


@require_GET
@subscription_view()
def subscription_log(request, subscription):
    """The Delivery Log alone, for the page's live refresh."""
    return render(request, "console/subscriptions/_delivery_log.html", {
        "subscription": subscription, **_log_context(request, subscription, activity_codes(subscription)),
    })


def _log_context(request, subscription, codes: list[str], health=None) -> dict:
    """Return the log's search form and one page of it, each unfinished row with what it waits for.

    A search that cannot be read shows no rows; a page link (?before=) that cannot be used shows the first page.
    """
    form = LogFilterForm(request.GET, codes=codes)
    filters = form.selector_kwargs()
    before = request.GET.get("before") or ""
    if form.errors:
        page = LogPage(deliveries=[], older_cursor=None, has_unfinished=False)
    else:
        page = delivery_log(subscription=subscription, cursor=before, **filters)
    if page.has_unfinished:
        health = health or endpoint_health_view(subscriptions=[subscription])[subscription.id]
        waits = delivery_waits(subscription=subscription, deliveries=page.deliveries, health=health)
        shared = _shared_waits(page.deliveries, waits)
    else:
        shared = []
    # A page link that could not be used gave the first page (and says so): it refreshes like the first page.
    return {"log": page, "log_form": form, "log_before": "" if page.cursor_error else before, "log_waits": shared}


def _shared_waits(deliveries, waits: dict) -> list[tuple]:
    """Set each row's `wait`; return [(wait, rows)] for the waits several rows of the page share.

    A shared reason is said once above the log; its rows say "Waiting" (`wait_number` says which reason).
    """
    rows: dict = {}
    for d in deliveries:
        d.wait = waits.get(d.id)
        if d.wait is not None:
            rows[d.wait] = rows.get(d.wait, 0) + 1
    shared = [(wait, count) for wait, count in rows.items() if count > 1]
    numbers = {wait: number for number, (wait, _) in enumerate(shared, start=1)}
    for d in deliveries:
        d.wait_number = numbers.get(d.wait)
    return shared


def _not_a_surprise_duplicate(form: SubscriptionForm, organisation, exclude=None) -> bool:
    """Return True unless another live webhook of the organisation has this URL and the form has not confirmed it.

    Two webhooks to one URL are allowed (two environments behind one gateway, say), after a confirmation:
    by mistake they send every event twice.
    """
    other = subscription_with_url(organisation=organisation, url=form.cleaned_data["url"], exclude=exclude)
    if other is None or form.cleaned_data.get("confirm_duplicate"):
        return True
    form.duplicate_of = other
    form.add_error("url", "This organisation already has a webhook to this URL: every event it selects would be "
                          "sent twice. Tick the box below to add it anyway, or change the URL.")
    return False


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def subscription_edit(request, subscription):
    if ADD_HEADER in request.POST:
        form = SubscriptionEditForm.row_added(request.POST, stored_headers=subscription.custom_headers)
        return render(request, "console/subscriptions/form.html", {"form": form, "subscription": subscription})
    form = SubscriptionEditForm.for_subscription(subscription, data=request.POST or None)
    if (request.method == "POST" and form.is_valid()
            and _not_a_surprise_duplicate(form, subscription.organisation, exclude=subscription)):
        try:
            with transaction.atomic():  # the fields and the headers are saved together, or neither
                services.subscription_update(
                    subscription=subscription, url=form.cleaned_data["url"],
                    activity_types=form.cleaned_data["activity_types"],
                    description=form.cleaned_data["description"], by=request.user, controls=form.controls(),
                )
                if form.headers_changed():
                    services.subscription_set_headers(subscription=subscription,
                                                      headers=form.cleaned_data["custom_headers"], by=request.user)
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, "Saved. The changes apply from the next event.")
            return redirect("console:subscription_detail", subscription_id=subscription.id)
    return render(request, "console/subscriptions/form.html", {"form": form, "subscription": subscription})


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def subscription_test(request, subscription):
    """GET: pick a type, see and edit its sample payload; POST: send it (the sample when no payload is posted)."""
    codes = activity_codes(subscription)
    # The GET page only reads its ?activity_type=; a POST without `data` is the detail page's one click.
    form = TestForm(request.POST if request.method == "POST" else request.GET, codes=codes,
                    editing=request.method == "POST" and "data" in request.POST)
    if request.method == "POST":
        if "activity_type" in form.errors:
            return HttpResponseBadRequest("Choose one of this webhook's activity types.")
        if form.is_valid():
            try:
                event = services.subscription_send_test(
                    subscription=subscription, activity_type=form.cleaned_data["activity_type"], by=request.user,
                    data=form.cleaned_data.get("data"),
                )
            except ValidationError as exc:
                form.add_service_error(exc)
            else:
                label = get_activity_type(event.activity_type).label
                if subscription.is_active:
                    messages.success(request, f"Test sent: {label} ({event.webhook_id}). "
                                              "Its result appears in the Delivery Log.")
                else:
                    messages.warning(request, f"Test held: {label} ({event.webhook_id}). This webhook is paused: "
                                              "the test is sent when you resume it.")
                return redirect(reverse("console:subscription_detail", args=[subscription.id]) + "#delivery-log")
    return render(request, "console/subscriptions/test.html", {"subscription": subscription, "form": form},
                  status=400 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def subscription_regenerate(request, subscription):
    """GET: warn and offer to keep the old secret signing for a while; POST: regenerate."""
    form = RegenerateForm(data=request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        secret = services.subscription_regenerate_secret(subscription=subscription, by=request.user,
                                                         overlap=form.overlap())
        _hand_over_secret(request, subscription, secret)
        return redirect("console:subscription_secret", subscription_id=subscription.id)
    return render(request, "console/subscriptions/confirm_regenerate.html",
                  {"subscription": subscription, "form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def subscription_stop_old_secret(request, subscription):
    """GET: confirm; POST: the old secret of a planned rotation stops signing now."""
    if request.method == "POST":
        if services.subscription_stop_old_secret(subscription=subscription, by=request.user):
            messages.success(request, "The old secret stopped signing: from the next attempt, only the new secret "
                                      "signs.")
        else:
            messages.info(request, "The old secret had already stopped signing.")
        return redirect("console:subscription_detail", subscription_id=subscription.id)
    return render(request, "console/subscriptions/confirm_stop_old_secret.html", {"subscription": subscription})


@require_POST
@subscription_view(admin=True)
def subscription_pause(request, subscription):
    if subscription.is_active:
        services.subscription_pause(subscription=subscription, by=request.user)
        messages.success(request, "Paused. New events are held, not sent, until you resume.")
    return redirect("console:subscription_detail", subscription_id=subscription.id)


@require_POST
@subscription_view(admin=True)
def subscription_resume(request, subscription):
    if not subscription.is_active:
        released = services.subscription_resume(subscription=subscription, by=request.user)
        held = (f" {_deliveries(released, 'held delivery is', 'held deliveries are')} being sent, oldest first."
                if released else "")
        messages.success(request, "Resumed." + held)
    return redirect("console:subscription_detail", subscription_id=subscription.id)


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def subscription_recover(request, subscription):
    """Retry the failed deliveries created since the moment given (UTC): GET says how many, POST sends them."""
    form = RecoverForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(request, "Enter the date and time from which to retry failed deliveries (UTC).")
        return redirect("console:subscription_detail", subscription_id=subscription.id)
    since = form.cleaned_data["since"]
    if request.method == "GET":
        # Exact to BULK_LIMIT, like Bulk redeliver's confirmation; past it the page says "more than" (all are sent).
        count = deliveries_failed_since_count(subscription=subscription, since=since, limit=BULK_LIMIT)
        return render(request, "console/subscriptions/confirm_recover.html", {
            "subscription": subscription, "since": since, "since_value": request.GET["since"],
            "count": min(count, BULK_LIMIT), "more": count > BULK_LIMIT,
            "count_shown": count_shown(min(count, BULK_LIMIT), more=count > BULK_LIMIT),
        })
    count = deliveries_recover_since(subscription=subscription, since=since, by=request.user)
    if count:
        verb = "sent again" if subscription.is_active else "held until you resume"
        messages.success(request, f"{_deliveries(count, 'failed delivery', 'failed deliveries')} {verb}.")
    else:
        messages.info(request, "No failed deliveries since then.")
    return redirect(reverse("console:subscription_detail", args=[subscription.id]) + "#delivery-log")


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def subscription_delete(request, subscription):
    if request.method == "POST":
        cancelled = services.subscription_delete(subscription=subscription, by=request.user)
        note = (f" {_deliveries(cancelled, 'pending delivery was', 'pending deliveries were')} cancelled."
                if cancelled else "")
        messages.success(request, f"Deleted the webhook to {subscription.url}.{note}")
        return redirect("console:subscription_list")
    return render(request, "console/subscriptions/confirm_delete.html", {
        "subscription": subscription, "unfinished": deliveries_unfinished_count(subscription=subscription),
    })
