from django.db.models import Count, F, OuterRef, Subquery

from organisations.models import Membership


def _with_organisation_count(memberships):
    """Annotate each membership with `organisations_count`: how many organisations its user belongs to.

    In the same query: a page learns whether to show the header's switcher without another one.
    """
    count = (Membership.objects.filter(user=OuterRef("user")).order_by().values("user")
             .annotate(n=Count("id")).values("n"))
    return memberships.select_related("organisation").annotate(organisations_count=Subquery(count))


def memberships_for_user(*, user) -> list[Membership]:
    """Return every membership of the user with its organisation, by organisation name."""
    if not user.is_authenticated:
        return []
    return list(Membership.objects.select_related("organisation").filter(user=user)
                .order_by("organisation__name", "organisation__slug"))


def membership_for_user(*, user) -> Membership | None:
    """Return the membership the pages work in: the one the user chose last, else the oldest; None if none."""
    if not user.is_authenticated:
        return None
    return (_with_organisation_count(Membership.objects.filter(user=user))
            .order_by(F("chosen_at").desc(nulls_last=True), "created_at").first())


def membership_in(*, user, organisation_id) -> Membership | None:
    """Return the user's membership of that organisation, or None (never another user's)."""
    if not user.is_authenticated:
        return None
    return _with_organisation_count(Membership.objects.filter(user=user, organisation_id=organisation_id)).first()
