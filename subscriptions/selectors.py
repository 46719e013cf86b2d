"""Reads of the subscription side, always scoped to an organisation."""

from django.db.models import Prefetch, QuerySet

from subscriptions.models import SubscribedActivityType, Subscription


def subscription_list(*, organisation) -> QuerySet[Subscription]:
    """Return the organisation's live subscriptions, newest first, with their activity types."""
    return (
        Subscription.objects.filter(organisation=organisation, deleted_at__isnull=True)
        .prefetch_related(Prefetch("activity_types", queryset=SubscribedActivityType.objects.order_by("id")))
        .order_by("-created_at")
    )


def subscription_get(*, organisation, subscription_id) -> Subscription | None:
    """Return the organisation's live subscription with that id, or None (never another organisation's)."""
    return subscription_list(organisation=organisation).filter(id=subscription_id).first()


def subscription_organisation_for_user(*, user, subscription_id):
    """Return the id of the organisation of the user's that has this live webhook, or None."""
    return (Subscription.objects.filter(id=subscription_id, deleted_at__isnull=True,
                                        organisation__memberships__user=user)
            .values_list("organisation_id", flat=True).first())


def subscription_with_url(*, organisation, url: str, exclude: Subscription | None = None) -> Subscription | None:
    """Return another live subscription of the organisation to exactly this URL, or None."""
    qs = Subscription.objects.filter(organisation=organisation, deleted_at__isnull=True, url=url.strip())
    if exclude is not None:
        qs = qs.exclude(id=exclude.id)
    return qs.order_by("created_at").first()


def activity_codes(subscription: Subscription) -> list[str]:
    return [t.activity_type for t in subscription.activity_types.all()]
