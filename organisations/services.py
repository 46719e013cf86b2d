from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from organisations.models import Membership, Organisation


@transaction.atomic
def organisation_create(*, slug: str, name: str, admin_username: str, admin_password: str) -> Organisation:
    """Create (or update) the organisation and make the user one of its admins; idempotent."""
    organisation, _ = Organisation.objects.update_or_create(slug=slug, defaults={"name": name})
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=admin_username)
    if created or not user.check_password(admin_password):
        user.set_password(admin_password)
        user.save(update_fields=["password"])
    Membership.objects.update_or_create(
        user=user, organisation=organisation, defaults={"role": Membership.Role.ADMIN}
    )
    return organisation


def membership_choose(*, membership: Membership) -> Membership:
    """Make this the organisation the user's pages work in (until another is chosen); return it."""
    membership.chosen_at = timezone.now()
    Membership.objects.filter(pk=membership.pk).update(chosen_at=membership.chosen_at)
    return membership
