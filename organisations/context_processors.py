from organisations.selectors import membership_for_user


def current_organisation(request):
    """Expose the signed-in user's membership to every template."""
    membership = getattr(request, "membership", None)
    if membership is None and hasattr(request, "user"):
        membership = membership_for_user(user=request.user)
    return {"membership": membership, "organisation": membership.organisation if membership else None}
