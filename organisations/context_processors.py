from organisations.selectors import membership_for_user


def current_organisation(request):
    """Expose the signed-in user's membership to every template."""
    membership = getattr(request, "membership", None)
    if membership is None and hasattr(request, "user"):
        membership = membership_for_user(user=request.user)
    return {"membership": membership, "organisation": membership.organisation if membership else None}


def private_networks(request):
    """Expose WEBHOOKS_ALLOW_PRIVATE_NETWORKS, so every page can say when the SSRF guard is off."""
    from django.conf import settings

    return {"allow_private_networks": settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS}
