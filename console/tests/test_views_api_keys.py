"""Administration > API keys: admins only, the key shown once, revoke with a confirmation, nothing of another's."""

import pytest
from django.urls import reverse

from api.models import ApiKey
from api.services import api_key_create, key_hash

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("web_settings")]


def test_create_shows_the_key_once_and_stores_only_its_hash(admin_client, alice):
    response = admin_client.post(reverse("console:api_keys"), {"name": "LIMS", "scopes": ["events"],
                                                               "expires": "30"})
    api_key = ApiKey.objects.get()
    assert response.status_code == 302
    shown = admin_client.get(response["Location"])
    key = shown.context["key"]
    assert key and key_hash(key) == api_key.key_hash and key in shown.content.decode()
    assert shown["Cache-Control"].startswith("max-age=0")
    assert key not in admin_client.get(response["Location"]).content.decode()  # once
    assert key not in admin_client.get(reverse("console:api_keys")).content.decode()
    assert api_key.created_by == alice and api_key.expires_at is not None and api_key.scopes == ["events"]


@pytest.mark.parametrize(("data", "error"), [
    ({"name": "", "scopes": ["read"]}, "This field is required."),  # no name
    ({"name": "x"}, "Choose at least one scope."),  # no scope
    ({"name": "x", "scopes": ["admin"]}, "Select a valid choice."),  # a scope that does not exist
    ({"name": "x", "scopes": ["read"], "expires": "7"}, "Select a valid choice."),  # an expiry not offered
])
def test_a_bad_key_is_refused_at_its_field(admin_client, data, error):
    response = admin_client.post(reverse("console:api_keys"), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoke_asks_then_revokes_and_the_list_keeps_it_as_its_trail(admin_client, org, alice):
    api_key, _ = api_key_create(organisation=org, name="ERP sync", scopes=["read"], created_by=alice)
    url = reverse("console:api_key_revoke", args=[api_key.id])
    assert "Revoke this API key?" in admin_client.get(url).content.decode()
    assert ApiKey.objects.get().revoked_at is None
    admin_client.post(url)
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None and api_key.revoked_by == alice
    page = admin_client.get(reverse("console:api_keys")).content.decode()
    assert "Revoked" in page and "by alice" in page and api_key.prefix in page


def test_another_organisations_key_is_404_and_a_member_gets_403(client, org, other_org, alice, bob, mallory):
    api_key, _ = api_key_create(organisation=org, name="Acme-only key", scopes=["read"], created_by=alice)
    client.force_login(mallory)
    assert client.post(reverse("console:api_key_revoke", args=[api_key.id])).status_code == 404
    assert "Acme-only key" not in client.get(reverse("console:api_keys")).content.decode()
    client.force_login(bob)
    assert client.get(reverse("console:api_keys")).status_code == 403
    assert client.post(reverse("console:api_key_revoke", args=[api_key.id])).status_code == 403
    assert ApiKey.objects.get().revoked_at is None


def test_the_list_costs_the_same_queries_for_one_key_or_twenty(admin_client, org, alice,
                                                              django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api_key_create(organisation=org, name="one", scopes=["read"], created_by=alice)
    with CaptureQueriesContext(connection) as one:
        admin_client.get(reverse("console:api_keys"))
    for i in range(19):
        api_key_create(organisation=org, name=f"key {i}", scopes=["read"], created_by=alice)
    with django_assert_max_num_queries(len(one)):
        assert admin_client.get(reverse("console:api_keys")).content.decode().count("<code>whk_") == 20
