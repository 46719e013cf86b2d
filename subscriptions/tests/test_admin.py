"""The Django admin: superusers look, nobody edits the log there, and no secret is ever shown."""

import pytest
from django.urls import reverse

from conftest import make_subscription
from subscriptions.models import Subscription

pytestmark = pytest.mark.usefixtures("web_settings")


def test_subscription_is_shown_read_only_without_its_secret(client, org, superuser):
    subscription, secret = make_subscription(org)
    client.force_login(superuser)
    listing = client.get(reverse("admin:subscriptions_subscription_changelist")).content.decode()
    assert subscription.url in listing
    page = client.get(reverse("admin:subscriptions_subscription_change", args=[subscription.id])).content.decode()
    assert subscription.url in page and "lot.created" in page
    assert secret not in page
    assert subscription.secret_encrypted not in page  # not even the ciphertext
    assert 'name="url"' not in page  # no editable field
    assert client.get(reverse("admin:subscriptions_subscription_add")).status_code == 403
    assert client.post(reverse("admin:subscriptions_subscription_delete", args=[subscription.id]),
                       {"post": "yes"}).status_code == 403
    assert Subscription.objects.filter(id=subscription.id).exists()


def test_organisations_and_memberships_are_managed_in_the_admin(client, org, alice, superuser):
    client.force_login(superuser)
    page = client.get(reverse("admin:organisations_organisation_change", args=[org.id])).content.decode()
    assert "Acme Cultivation" in page and "alice" in page


def test_members_who_are_not_staff_cannot_enter_the_admin(client, alice):
    client.force_login(alice)
    response = client.get(reverse("admin:subscriptions_subscription_changelist"))
    assert response.status_code == 302 and "/login/" in response["Location"]
