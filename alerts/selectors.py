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
