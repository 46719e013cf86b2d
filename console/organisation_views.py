"""The header's organisation switcher, for a user of several organisations."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from organisations.selectors import membership_in
from organisations.services import membership_choose


@login_required
@require_POST
def organisation_switch(request):
    """Work in the posted organisation (one of the user's) from now on; 404 for any other."""
    try:
        organisation_id = uuid.UUID(request.POST.get("organisation", ""))
    except ValueError:  # not an id: the same 404 as an organisation that is not the user's
        organisation_id = None
    membership = membership_in(user=request.user, organisation_id=organisation_id) if organisation_id else None
    if membership is None:
        raise Http404("You are not a member of that organisation.")
    membership_choose(membership=membership)
    messages.success(request, f"You are now working in {membership.organisation.name}.")
    return redirect("console:subscription_list")
