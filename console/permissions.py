"""Who may see and change an organisation's webhooks.

Members see their organisation's webhooks; only its admins change them (403
for other members). Anything outside the user's organisations is a 404, so an
id from another organisation is indistinguishable from one that never existed.

A user of several organisations works in one at a time (the header's switcher).
A link to a webhook of another of them (an alert email's, say) switches to that
organisation and says so, rather than answering 404.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from organisations.models import Membership
from organisations.selectors import membership_for_user, membership_in
from organisations.services import membership_choose
from subscriptions.selectors import subscription_get, subscription_organisation_for_user


def membership_or_404(request) -> Membership:
    """Return the signed-in user's membership (cached on the request), or raise Http404."""
    membership = getattr(request, "membership", None)
    if membership is None:
        membership = membership_for_user(user=request.user)
        request.membership = membership
    if membership is None:
        raise Http404("You are not a member of an organisation.")
    return membership


def require_admin(membership: Membership) -> None:
    """Raise PermissionDenied (403) unless the member is an admin of the organisation."""
    if not membership.is_admin:
        raise PermissionDenied("Only administrators of the organisation can change its webhooks.")


def subscription_view(*, admin: bool = False):
    """Decorate a view taking `subscription_id`: call it with the member's subscription, or 404/403.

    The lookup comes first, so another organisation's user gets a 404 before any
    permission check can reveal that the id exists.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, subscription_id, *args, **kwargs):
            membership = membership_or_404(request)
            subscription = subscription_get(organisation=membership.organisation, subscription_id=subscription_id)
            if subscription is None:
                membership = _switched_to_its_organisation(request, subscription_id)
                subscription = subscription_get(organisation=membership.organisation, subscription_id=subscription_id)
            if subscription is None:
                raise Http404("No such webhook.")
            if admin:
                require_admin(membership)
            return view(request, subscription, *args, **kwargs)

        return wrapper

    return decorator


def _switched_to_its_organisation(request, subscription_id) -> Membership:
    """Return the membership of another of the user's organisations that has this webhook, now chosen; or 404."""
    organisation_id = subscription_organisation_for_user(user=request.user, subscription_id=subscription_id)
    membership = membership_in(user=request.user, organisation_id=organisation_id) if organisation_id else None
    if membership is None:
        raise Http404("No such webhook.")
    request.membership = membership_choose(membership=membership)
    messages.info(request, f"You are now working in {membership.organisation.name}, the organisation of this webhook.")
    return membership
