"""A user of several organisations works in one at a time: the header's switcher, and links that switch."""

import pytest

from conftest import make_subscription
from organisations.models import Membership
from organisations.selectors import membership_for_user

pytestmark = pytest.mark.usefixtures("web_settings")

LIST = "/administration/webhooks/"
SWITCH = "/accounts/organisation/"


@pytest.fixture
def both(alice, other_org):
    """alice: admin of acme (her first organisation) and a member of globex."""
    Membership.objects.create(user=alice, organisation=other_org, role=Membership.Role.MEMBER)
    return alice


def test_one_organisation_shows_its_name_and_no_switcher(client, alice):
    client.force_login(alice)
    page = client.get(LIST).content.decode()
    assert "alice · Acme Cultivation" in page and 'id="organisation-switch"' not in page


def test_the_switcher_moves_every_page_to_the_chosen_organisation(client, both, org, other_org):
    ours, _ = make_subscription(org, url="https://acme.example.com/in")
    theirs, _ = make_subscription(other_org, url="https://globex.example.com/in")
    client.force_login(both)
    page = client.get(LIST).content.decode()
    assert 'id="organisation-switch"' in page and ours.url in page and theirs.url not in page

    answer = client.post(SWITCH, {"organisation": str(other_org.id)})

    assert answer.status_code == 302 and answer["Location"] == LIST
    page = client.get(LIST).content.decode()
    assert theirs.url in page and ours.url not in page
    assert f'<option value="{other_org.id}" selected>Globex Farms</option>' in page
    assert "You are now working in Globex Farms." in page
    assert client.get(f"/administration/webhooks/{theirs.id}/edit/").status_code == 403  # a member there
    assert membership_for_user(user=both).organisation == other_org  # kept for the next visit


@pytest.mark.parametrize("posted", ["", "not-an-id", "00000000-0000-0000-0000-000000000000"])
def test_switching_to_anything_but_ones_own_organisation_is_a_404(client, both, org, posted):
    client.force_login(both)
    assert client.post(SWITCH, {"organisation": posted}).status_code == 404  # bad input
    assert membership_for_user(user=both).organisation == org


def test_switching_to_another_users_organisation_is_a_404_and_changes_nothing(client, alice, org, other_org, mallory):
    client.force_login(alice)
    assert client.post(SWITCH, {"organisation": str(other_org.id)}).status_code == 404  # bad input: not hers
    assert membership_for_user(user=alice).organisation == org


def test_a_link_to_a_webhook_of_her_other_organisation_opens_it_there(client, both, other_org):
    theirs, _ = make_subscription(other_org, url="https://globex.example.com/in")
    client.force_login(both)

    page = client.get(f"/administration/webhooks/{theirs.id}/")

    assert page.status_code == 200 and theirs.url in page.content.decode()
    assert membership_for_user(user=both).organisation == other_org


def test_a_link_to_a_webhook_of_an_organisation_she_is_not_in_stays_a_404(client, alice, org, other_org, mallory):
    theirs, _ = make_subscription(other_org, url="https://globex.example.com/in")
    client.force_login(alice)
    assert client.get(f"/administration/webhooks/{theirs.id}/").status_code == 404
    assert membership_for_user(user=alice).organisation == org
