"""Redeliver the Delivery Log's filtered set: a count to confirm, then the sends."""

from django.contrib import messages
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from console.forms import LogFilterForm
from console.permissions import subscription_view
from delivery.bulk import BULK_LIMIT, deliveries_redeliver_filtered, deliveries_redeliverable
from delivery.selectors import deliveries_count
from subscriptions.selectors import activity_codes


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def deliveries_bulk_redeliver(request, subscription):
    """GET: how many finished deliveries the filters select; POST: redeliver them (same filters)."""
    form = LogFilterForm(request.POST if request.method == "POST" else request.GET,
                         codes=activity_codes(subscription))
    filters = form.selector_kwargs()
    # Only the search itself travels on (not the page's cursor, nor anything else in the query string).
    query = QueryDict(mutable=True)
    for name in form.fields:
        if form.data.get(name):
            query[name] = form.data[name]
    back = reverse("console:subscription_detail", args=[subscription.id]) + (f"?{query.urlencode()}" if query else "")
    if form.errors:
        messages.error(request, "Correct the search first.")
        return redirect(back + "#delivery-log")
    if request.method == "POST":
        if not subscription.is_active:
            messages.error(request, "This webhook is paused: resume it to redeliver.")
        else:
            count = deliveries_redeliver_filtered(subscription=subscription, by=request.user,
                                                  description=form.describe(), **filters)
            if count:
                messages.success(request, f"Redelivering {count:,} deliver{'y' if count == 1 else 'ies'}: "
                                          "the same event ids, signed with the current secret.")
            else:
                messages.info(request, "Nothing was redelivered: no finished delivery matches, or more than "
                                       f"{BULK_LIMIT:,} do.")
        return redirect(back + "#delivery-log")
    count = deliveries_count(deliveries_redeliverable(subscription=subscription, **filters), limit=BULK_LIMIT)
    return render(request, "console/delivery/confirm_bulk_redeliver.html", {
        "subscription": subscription, "form": form, "count": count, "too_many": count > BULK_LIMIT,
        "limit": f"{BULK_LIMIT:,}", "description": form.describe(), "back": back,
        "hidden": [(k, v) for k, v in query.items() if v],
    })
