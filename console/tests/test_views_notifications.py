"""The account's Notifications page: alert emails on or off, and where they go."""

import pytest
from django.urls import reverse

from alerts.models import AlertPreference
from alerts.selectors import alert_recipients
from organisations.models import Membership

pytestmark = pytest.mark.usefixtures("web_settings")

URL = "/accounts/notifications/"


def test_the_header_links_to_the_notifications_page(client, alice):
    client.force_login(alice)
    page = client.get(reverse("console:subscription_list")).content.decode()
    assert f'href="{URL}">Notifications</a>' in page


def test_alerts_are_on_until_an_admin_turns_them_off(client, alice):
    alice.email = "alice@acme.test"
    alice.save()
    client.force_login(alice)
    page = client.get(URL).content.decode()
    assert 'name="email_endpoint_alerts"' in page and "checked" in page
    assert alert_recipients(organisation=alice.memberships.get().organisation) == ["alice@acme.test"]

    answer = client.post(URL, {"email": "alice@acme.test"})  # the box unticked

    assert answer.status_code == 302
    membership = Membership.objects.get(user=alice)
    assert AlertPreference.objects.get(membership=membership).email_endpoint_alerts is False
    assert alert_recipients(organisation=membership.organisation) == []
    assert "checked" not in client.get(URL).content.decode()
    client.post(URL, {"email": "alice@acme.test", "email_endpoint_alerts": "on"})
    assert alert_recipients(organisation=membership.organisation) == ["alice@acme.test"]


def test_the_address_is_the_accounts_email_and_a_bad_one_is_an_error_at_the_field(client, alice):
    client.force_login(alice)
    assert "alerts cannot reach you" in client.get(URL).content.decode()

    answer = client.post(URL, {"email": "not an address", "email_endpoint_alerts": "on"})  # bad input

    assert answer.status_code == 400
    page = answer.content.decode()
    assert 'id="error-summary"' in page and 'href="#id_email"' in page and "Enter a valid email address." in page
    alice.refresh_from_db()
    assert alice.email == ""
    client.post(URL, {"email": "alice@acme.test", "email_endpoint_alerts": "on"})
    alice.refresh_from_db()
    assert alice.email == "alice@acme.test"


def test_a_member_is_told_only_admins_receive_them_and_gets_none(client, bob, alice):
    bob.email = "bob@acme.test"
    bob.save()
    client.force_login(bob)
    assert "Only administrators of Acme Cultivation receive these emails" in client.get(URL).content.decode()
    assert alert_recipients(organisation=bob.memberships.get().organisation) == []


def test_someone_of_no_organisation_gets_a_404(client, superuser):
    client.force_login(superuser)
    assert client.get(URL).status_code == 404
