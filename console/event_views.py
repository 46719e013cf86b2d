"""Administration > Events: the organisation's events across all its webhooks, each with every delivery's state.

Found by event id (the whole evt_ id, as receivers see it), activity type and a date range; the
Webhooks list's search sends an event id here. A page costs a fixed number of queries (the
events, their deliveries with their webhooks), whatever the number of webhooks.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.forms import LogFilterForm
from console.permissions import membership_or_404
from delivery.selectors import EventPage, event_log
from subscriptions.activity_types import choices


@login_required
@require_GET
def event_list(request):
    """Render one page of the signed-in organisation's events (404 for a user outside one)."""
    membership = membership_or_404(request)
    form = LogFilterForm(request.GET, codes=[code for code, _ in choices()])
    filters = form.selector_kwargs()
    if form.errors:
        page = EventPage(events=[], older_cursor=None)
    else:
        page = event_log(organisation=membership.organisation, event_id=filters["event_id"],
                         activity_type=filters["activity_type"], since=filters["since"], until=filters["until"],
                         cursor=request.GET.get("before") or None)
    return render(request, "console/events/list.html", {"form": form, "page": page,
                                                         "before": request.GET.get("before") or ""})
