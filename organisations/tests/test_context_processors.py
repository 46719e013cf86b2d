"""Every page says when WEBHOOKS_ALLOW_PRIVATE_NETWORKS lifts the SSRF guard."""

import pytest

pytestmark = pytest.mark.django_db

BANNER = 'data-testid="private-networks-banner"'


@pytest.mark.parametrize("path", ["/accounts/login/", "/administration/webhooks/", "/administration/webhooks/create/"])
def test_pages_show_the_banner_while_private_networks_are_allowed(web_settings, client, alice, path):
    web_settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    if path != "/accounts/login/":
        client.force_login(alice)
    body = client.get(path).content.decode()
    assert BANNER in body
    assert "Private networks allowed." in body


def test_no_banner_with_the_guard_on(web_settings, client, alice):
    web_settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    client.force_login(alice)
    response = client.get("/administration/webhooks/")
    assert response.status_code == 200
    assert BANNER not in response.content.decode()
