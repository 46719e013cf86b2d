from dataclasses import dataclass
from datetime import datetime

from django.db.models import Min

from delivery.models import Attempt, Delivery, EndpointHealth
from organisations.models import Membership


def alert_recipients(*, organisation) -> list[str]:
    """Return the email addresses of the organisation's admins who have not turned alerts off, sorted."""
    memberships = (
        Membership.objects.filter(organisation=organisation, role=Membership.Role.ADMIN, user__is_active=True)
        .exclude(alert_preference__email_endpoint_alerts=False)
        .exclude(user__email="")
    )
    return sorted(set(memberships.values_list("user__email", flat=True)))


def alerts_wanted(*, membership: Membership) -> bool:
    """Return True unless the member turned the alert emails off."""
    preference = getattr(membership, "alert_preference", None) if membership.pk else None
    return preference is None or preference.email_endpoint_alerts


def last_failed_attempt(*, subscription) -> Attempt | None:
    """Return the endpoint's latest attempt since it started failing (every one since then failed), or None."""
    health = EndpointHealth.objects.filter(subscription=subscription).first()
    if health is None or health.failing_since is None:
        return None
    # From when the record says the last failure started: a narrow range of the attempts' time index (from
    # failing_since, at 10M attempts the planner could walk every attempt looking for this endpoint's latest).
    since = health.last_failed_at or health.failing_since
    return (Attempt.objects.filter(delivery__subscription=subscription, started_at__gte=since)
            .order_by("-started_at", "-id").first())


@dataclass(frozen=True)
class Lost:
    count: int
    event_ids: list  # the first ones, oldest first (at most LOST_IDS)
    first_created: datetime | None  # the oldest one's created_at, for "Retry failed deliveries since"


LOST_IDS = 50


def lost_deliveries(*, subscription, since: datetime, until: datetime) -> Lost:
    """Return the endpoint's deliveries that failed for good between since and until (by when they finished)."""
    qs = Delivery.objects.filter(subscription=subscription, state=Delivery.State.FAILED,
                                 completed_at__gte=since, completed_at__lte=until)
    first = list(qs.order_by("completed_at", "id").values_list("event_id", flat=True)[:LOST_IDS])
    if not first:
        return Lost(count=0, event_ids=[], first_created=None)
    return Lost(count=qs.count(), event_ids=first, first_created=qs.aggregate(m=Min("created_at"))["m"])
