from organisations.models import Membership


def membership_for_user(*, user) -> Membership | None:
    """Return the user's membership (the first, if several), or None."""
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("organisation").filter(user=user).order_by("created_at").first()
