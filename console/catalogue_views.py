"""Administration > Webhooks > Event catalogue: every activity type, with its schema and a sample."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from console.permissions import membership_or_404
from subscriptions.event_docs import ENVELOPE_FIELDS, catalogue


@login_required
def event_catalogue(request):
    """Render the catalogue for any member of an organisation (404 for users outside one)."""
    membership_or_404(request)
    groups = catalogue()
    return render(request, "console/subscriptions/event_catalogue.html", {
        "groups": groups,
        "envelope_fields": ENVELOPE_FIELDS,
        "type_count": sum(len(entries) for _, entries in groups),
    })
