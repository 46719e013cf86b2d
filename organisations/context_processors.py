from django.utils.functional import SimpleLazyObject

from organisations.selectors import membership_for_user, memberships_for_user


def current_organisation(request):
    """Expose the signed-in user's membership, and all of them for the header's switcher, to every template."""
    membership = getattr(request, "membership", None)
    if membership is None and hasattr(request, "user"):
        membership = membership_for_user(user=request.user)
    user = getattr(request, "user", None)
    return {"membership": membership, "organisation": membership.organisation if membership else None,
            # Read only by the header's switcher, for a user of several organisations.
            "memberships": SimpleLazyObject(lambda: memberships_for_user(user=user) if user else [])}


def private_networks(request):
    """Expose WEBHOOKS_ALLOW_PRIVATE_NETWORKS, so every page can say when the SSRF guard is off."""
    from django.conf import settings

    return {"allow_private_networks": settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS}
