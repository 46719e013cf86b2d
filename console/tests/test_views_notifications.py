"""The account's Notifications page: where alert emails go, and a switch for each of the user's organisations."""

import pytest
from django.urls import reverse

from alerts.models import AlertPreference
from alerts.selectors import alert_recipients
from conftest import make_organisation
from organisations.models import Membership

pytestmark = pytest.mark.usefixtures("web_settings")

URL = "/accounts/notifications/"


def switch(organisation) -> str:
    return f"alerts_{organisation.id.hex}"


@pytest.fixture
def two_orgs_admin(alice, other_org):
    """alice, an admin of acme and of globex too, with an address."""
    Membership.objects.create(user=alice, organisation=other_org, role=Membership.Role.ADMIN)
    alice.email = "alice@acme.test"
    alice.save()
    return alice


def test_the_header_links_to_the_notifications_page(client, alice):
    client.force_login(alice)
    page = client.get(reverse("console:subscription_list")).content.decode()
    assert f'href="{URL}">Notifications</a>' in page


def test_alerts_are_on_until_an_admin_turns_them_off(client, alice, org):
    alice.email = "alice@acme.test"
    alice.save()
    client.force_login(alice)
    page = client.get(URL).content.decode()
    assert f'name="{switch(org)}"' in page and "checked" in page
    assert alert_recipients(organisation=org) == ["alice@acme.test"]

    answer = client.post(URL, {"email": "alice@acme.test"})  # the box unticked

    assert answer.status_code == 302
    membership = Membership.objects.get(user=alice)
    assert AlertPreference.objects.get(membership=membership).email_endpoint_alerts is False
    assert alert_recipients(organisation=org) == []
    assert "checked" not in client.get(URL).content.decode()
    client.post(URL, {"email": "alice@acme.test", switch(org): "on"})
    assert alert_recipients(organisation=org) == ["alice@acme.test"]


def test_an_admin_of_two_organisations_gets_a_switch_for_each(client, two_orgs_admin, org, other_org):
    # Finding 6 of issue 21: only the first membership used to change; the other's alerts still arrived.
    client.force_login(two_orgs_admin)
    page = client.get(URL).content.decode()
    assert f'name="{switch(org)}"' in page and f'name="{switch(other_org)}"' in page
    assert "Acme Cultivation" in page and "Globex Farms" in page

    client.post(URL, {"email": "alice@acme.test"})  # both boxes unticked

    assert alert_recipients(organisation=org) == [] and alert_recipients(organisation=other_org) == []
    client.post(URL, {"email": "alice@acme.test", switch(other_org): "on"})  # globex's alone back on
    assert alert_recipients(organisation=org) == []
    assert alert_recipients(organisation=other_org) == ["alice@acme.test"]
    page = client.get(URL).content.decode()
    assert f'name="{switch(other_org)}" id="id_{switch(other_org)}" checked' in page
    assert f'name="{switch(org)}" id="id_{switch(org)}">' in page


def test_a_switch_for_an_organisation_the_user_is_not_in_changes_nothing(client, alice, org, other_org, mallory):
    mallory.email = "mallory@globex.test"
    mallory.save()
    client.force_login(alice)
    # Bad input: a tampered form that names globex, of which alice is not a member (and no box for acme).
    assert client.post(URL, {"email": "", switch(other_org): ""}).status_code == 302
    assert alert_recipients(organisation=other_org) == ["mallory@globex.test"]
    assert not AlertPreference.objects.filter(membership__organisation=other_org).exists()


def test_the_address_is_the_accounts_email_and_a_bad_one_is_an_error_at_the_field(client, alice, org):
    client.force_login(alice)
    assert "alerts cannot reach you" in client.get(URL).content.decode()

    answer = client.post(URL, {"email": "not an address", switch(org): "on"})  # bad input

    assert answer.status_code == 400
    page = answer.content.decode()
    assert 'id="error-summary"' in page and 'href="#id_email"' in page and "Enter a valid email address." in page
    alice.refresh_from_db()
    assert alice.email == ""
    client.post(URL, {"email": "alice@acme.test", switch(org): "on"})
    alice.refresh_from_db()
    assert alice.email == "alice@acme.test"


def test_a_member_is_told_only_admins_receive_them_and_gets_none(client, bob, alice):
    bob.email = "bob@acme.test"
    bob.save()
    client.force_login(bob)
    assert "Only administrators of Acme Cultivation receive these emails" in client.get(URL).content.decode()
    assert alert_recipients(organisation=bob.memberships.get().organisation) == []


def test_an_admin_here_and_member_there_is_told_so_for_that_one_only(client, alice):
    third = make_organisation("initech", "Initech")
    Membership.objects.create(user=alice, organisation=third, role=Membership.Role.MEMBER)
    client.force_login(alice)
    page = client.get(URL).content.decode()
    assert "Only administrators of Initech receive these emails" in page
    assert "Only administrators of Acme Cultivation" not in page


def test_someone_of_no_organisation_gets_a_404(client, superuser):
    client.force_login(superuser)
    assert client.get(URL).status_code == 404
