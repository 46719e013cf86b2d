"""Redeliver the Delivery Log's filtered set: a count to confirm, then the sends of exactly what was confirmed."""

from django.contrib import messages
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from console.forms import BulkConfirmForm, LogFilterForm
from console.permissions import subscription_view
from delivery.bulk import BULK_LIMIT, SetChanged, deliveries_redeliver_filtered, deliveries_redeliverable
from delivery.selectors import deliveries_count
from subscriptions.selectors import activity_codes


@require_http_methods(["GET", "POST"])
@subscription_view(admin=True)
def deliveries_bulk_redeliver(request, subscription):
    """GET: how many finished deliveries the filters select now; POST: redeliver those, if still as many."""
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
    page = {"subscription": subscription, "form": form, "filters": filters, "query": query, "back": back}
    if request.method == "GET":
        return _confirmation(request, **page)
    if not subscription.is_active:
        messages.error(request, "This webhook is paused: resume it to redeliver.")
        return redirect(back + "#delivery-log")
    confirm = BulkConfirmForm(request.POST)
    if not confirm.is_valid():  # a form from before this check, or tampered with: ask with the count of now
        return _confirmation(request, **page, status=400,
                             note="Check how many deliveries will be sent again, then confirm.")
    confirmed = confirm.cleaned_data["confirmed"]
    try:
        count = deliveries_redeliver_filtered(subscription=subscription, by=request.user, confirmed=confirmed,
                                              created_before=confirm.cleaned_data["as_of"],
                                              description=form.describe(), **filters)
    except SetChanged as changed:
        return _confirmation(request, **page, status=409, note=(
            f"Nothing was redelivered: you confirmed {confirmed:,}, but {changed.count:,} of the deliveries you "
            "confirmed now match these filters (some finished or were redelivered meanwhile). Check the new "
            "count and confirm again."))
    if count:
        messages.success(request, f"Redelivering {count:,} deliver{'y' if count == 1 else 'ies'}: "
                                  "the same event ids, signed with the current secret.")
    else:
        messages.info(request, "Nothing was redelivered: no finished delivery matches.")
    return redirect(back + "#delivery-log")


def _confirmation(request, *, subscription, form, filters, query, back, note: str = "", status: int = 200):
    """Render the count to confirm, as of now; the POST carries both, so that only this set is sent."""
    as_of = timezone.now()
    count = deliveries_count(deliveries_redeliverable(subscription=subscription, created_before=as_of, **filters),
                             limit=BULK_LIMIT)
    return render(request, "console/delivery/confirm_bulk_redeliver.html", {
        "subscription": subscription, "form": form, "count": count, "too_many": count > BULK_LIMIT,
        "limit": f"{BULK_LIMIT:,}", "description": form.describe(), "back": back, "note": note,
        "hidden": [*[(k, v) for k, v in query.items() if v], ("confirmed", count), ("as_of", as_of.isoformat())],
    }, status=status)
