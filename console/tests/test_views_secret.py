"""The signing secret is in exactly one response: the page right after Create or Regenerate Secret."""

import logging

import pytest
from cryptography.fernet import Fernet
from django.contrib.sessions.models import Session
from django.urls import reverse

from conftest import make_subscription
from subscriptions.models import Subscription

pytestmark = pytest.mark.usefixtures("web_settings")


class Recorder:
    """A test client wrapper that keeps every response's headers and body."""

    def __init__(self, client):
        self.client = client
        self.responses = []

    def get(self, path, **kw):
        return self._keep(self.client.get(path, **kw))

    def post(self, path, data=None, **kw):
        return self._keep(self.client.post(path, data or {}, **kw))

    def _keep(self, response):
        headers = "\n".join(f"{k}: {v}" for k, v in response.items())
        self.responses.append((response.request["PATH_INFO"], headers + "\n\n" + response.content.decode()))
        return response

    def containing(self, text):
        return [path for path, raw in self.responses if text in raw]


def later_pages(sub_id):
    return [
        reverse("console:subscription_secret", args=[sub_id]),  # a reload
        reverse("console:subscription_list"),
        reverse("console:subscription_detail", args=[sub_id]),
        reverse("console:subscription_log", args=[sub_id]),
        reverse("console:subscription_edit", args=[sub_id]),
        reverse("console:subscription_regenerate", args=[sub_id]),
        reverse("console:subscription_delete", args=[sub_id]),
    ]


def session_rows_text():
    return "".join(str(s.get_decoded()) + s.session_data for s in Session.objects.all())


def test_secret_after_create_is_in_exactly_one_response(client, alice, caplog):
    caplog.set_level(logging.DEBUG)
    client.force_login(alice)
    web = Recorder(client)
    web.get(reverse("console:subscription_create"))
    created = web.post(reverse("console:subscription_create"), {
        "url": "https://hooks.example.com/in", "activity_types": ["lot.created", "order.created"],
    })
    subscription = Subscription.objects.get()
    secret_page = reverse("console:subscription_secret", args=[subscription.id])
    assert created.status_code == 302 and created["Location"] == secret_page  # the secret is not in the URL

    shown = web.get(secret_page)
    secret = shown.context["secret"]
    assert secret.startswith("whsec_")
    assert "Save your signing secret immediately" in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]  # the back button asks the server again
    # Gone from the session (and its database row) once the page is rendered.
    assert secret not in session_rows_text()
    assert not [k for k in client.session.keys() if k.startswith("webhooks:secret")]

    for path in later_pages(subscription.id):
        assert web.get(path).status_code == 200, path
    again = web.responses[-len(later_pages(subscription.id))][1]
    assert "was shown once and is not shown again" in again

    assert web.containing(secret) == [secret_page]
    assert secret not in caplog.text


def test_secret_after_regenerate_is_in_exactly_one_response_and_replaces_the_old(client, org, alice, caplog):
    caplog.set_level(logging.DEBUG)
    subscription, old_secret = make_subscription(org, created_by=alice)
    client.force_login(alice)
    web = Recorder(client)
    confirm = web.get(reverse("console:subscription_regenerate", args=[subscription.id]))
    assert "as soon as you regenerate, the old secret stops working" in confirm.content.decode()
    done = web.post(reverse("console:subscription_regenerate", args=[subscription.id]))
    secret_page = reverse("console:subscription_secret", args=[subscription.id])
    assert done["Location"] == secret_page
    new_secret = web.get(secret_page).context["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    for path in later_pages(subscription.id):
        web.get(path)
    assert web.containing(new_secret) == [secret_page]
    assert web.containing(old_secret) == []
    assert new_secret not in caplog.text and old_secret not in caplog.text
    assert new_secret not in session_rows_text()


def test_secret_page_of_another_webhook_shows_nothing(client, org, alice):
    """Bad input: the secret page of webhook B, opened while webhook A's new secret waits in the session."""
    a, _ = make_subscription(org, url="https://a.example.com/in")
    b, _ = make_subscription(org, url="https://b.example.com/in")
    client.force_login(alice)
    client.post(reverse("console:subscription_regenerate", args=[a.id]))
    other = client.get(reverse("console:subscription_secret", args=[b.id]))
    assert other.context["secret"] is None
    assert "whsec_" not in other.content.decode()
    # A's secret is still waiting for A's page, once.
    assert client.get(reverse("console:subscription_secret", args=[a.id])).context["secret"].startswith("whsec_")
    assert client.get(reverse("console:subscription_secret", args=[a.id])).context["secret"] is None


def test_secret_is_kept_encrypted_while_it_waits_in_the_session(client, org, alice):
    subscription, _ = make_subscription(org)
    client.force_login(alice)
    client.post(reverse("console:subscription_regenerate", args=[subscription.id]))
    waiting = session_rows_text()
    shown = client.get(reverse("console:subscription_secret", args=[subscription.id])).context["secret"]
    assert shown not in waiting


def test_a_secret_waiting_under_a_key_removed_meanwhile_is_not_a_500(client, org, alice, settings):
    # Bad input: the encryption key removed between Regenerate and the page that shows the secret once.
    subscription, _ = make_subscription(org)
    client.force_login(alice)
    client.post(reverse("console:subscription_regenerate", args=[subscription.id]))
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    response = client.get(reverse("console:subscription_secret", args=[subscription.id]))

    assert response.status_code == 200 and response.context["secret"] is None
    assert "The signing secret of this webhook was shown once and is not shown again." in response.content.decode()
