"""Who may see and change webhooks: anonymous, another organisation, a member, and CSRF on every POST."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from conftest import make_subscription
from delivery.models import Delivery, Event
from subscriptions.activity import record_activity
from subscriptions.models import Subscription, TrailEntry

pytestmark = pytest.mark.usefixtures("web_settings")

CHANGE_POSTS = {
    # name: the form data a legitimate admin would send
    "edit": {"url": "https://changed.example.com/in", "activity_types": ["order.created"]},
    "test": {"activity_type": "lot.created"},
    "regenerate": {},
    "pause": {},
    "resume": {},
    "delete": {},
}
CHANGE_GETS = ["edit", "regenerate", "delete", "secret"]
READ_GETS = ["detail", "log"]


@pytest.fixture
def delivery(org, subscription):
    with pytest.MonkeyPatch.context() as mp:  # no broker needed: the row is what we look at
        mp.setattr("delivery.wakeups.endpoints_awaken", lambda ids: 0)
        event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "L-1"})
    d = Delivery.objects.get(event=event)
    Delivery.objects.filter(id=d.id).update(state=Delivery.State.SUCCEEDED, last_status_code=200)
    return d


def url(name, subscription_id, delivery_id=None):
    if delivery_id is not None:
        return reverse(f"console:delivery_{name}", args=[subscription_id, delivery_id])
    return reverse(f"console:subscription_{name}", args=[subscription_id])


def all_urls(subscription_id, delivery_id):
    """Every webhook URL that takes an id, with the method it answers."""
    gets = [url(n, subscription_id) for n in READ_GETS + CHANGE_GETS]
    gets.append(url("detail", subscription_id, delivery_id))
    posts = [(url(n, subscription_id), data) for n, data in CHANGE_POSTS.items()]
    posts.append((url("redeliver", subscription_id, delivery_id), {}))
    return gets, posts


def snapshot(subscription):
    s = Subscription.objects.get(id=subscription.id)
    return (s.url, s.state, s.secret_encrypted, s.deleted_at, TrailEntry.objects.filter(subscription=s).count(),
            Event.objects.count(), sorted(s.activity_types.values_list("activity_type", flat=True)),
            list(Delivery.objects.values_list("state", flat=True)))


def test_anonymous_is_sent_to_login_everywhere(client, subscription, delivery):
    gets, posts = all_urls(subscription.id, delivery.id)
    for target in [reverse("console:subscription_list"), reverse("console:subscription_create"), *gets]:
        response = client.get(target)
        assert response.status_code == 302, target
        assert response["Location"].startswith(reverse("login") + "?next="), target
    before = snapshot(subscription)
    for target, data in posts:
        assert client.post(target, data).status_code == 302, target
    assert snapshot(subscription) == before


def test_root_leads_to_webhooks_page(client, alice):
    client.force_login(alice)
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == reverse("console:subscription_list")
    assert b"Webhooks" in response.content


def test_another_organisations_user_gets_404_on_every_webhook_url(client, subscription, delivery, mallory):
    """Bad input: mallory (admin of globex) tries acme's ids, random ids, and her own delivery under acme's id."""
    client.force_login(mallory)
    before = snapshot(subscription)
    gets, posts = all_urls(subscription.id, delivery.id)
    for target in gets:
        assert client.get(target).status_code == 404, target
    for target, data in posts:
        assert client.post(target, data).status_code == 404, target
    # Ids that never existed look the same as other organisations' ids.
    random_gets, random_posts = all_urls(uuid.uuid4(), uuid.uuid4())
    for target in random_gets:
        assert client.get(target).status_code == 404, target
    for target, data in random_posts:
        assert client.post(target, data).status_code == 404, target
    assert snapshot(subscription) == before
    # Her own list does not show acme's webhook.
    assert subscription.url.encode() not in client.get(reverse("console:subscription_list")).content


def test_delivery_of_one_webhook_is_404_under_another(client, org, alice, subscription, delivery):
    """Bad input: a real delivery id under a different (same-organisation) webhook's path."""
    other, _ = make_subscription(org, url="https://other.example.com/in")
    client.force_login(alice)
    assert client.get(url("detail", other.id, delivery.id)).status_code == 404
    assert client.post(url("redeliver", other.id, delivery.id)).status_code == 404


def test_member_sees_but_cannot_change_anything(client, subscription, delivery, bob):
    """Bad input: bob (member, not admin) opens every change page and sends every change."""
    client.force_login(bob)
    for target in [url(n, subscription.id) for n in READ_GETS] + [url("detail", subscription.id, delivery.id)]:
        assert client.get(target).status_code == 200, target
    page = client.get(url("detail", subscription.id)).content.decode()
    assert subscription.url in page
    for label in ("Test Webhook", "Regenerate Secret", "Delete", ">Pause<", ">Edit<"):
        assert label not in page, label
    assert "Create Webhook" not in client.get(reverse("console:subscription_list")).content.decode()

    before = snapshot(subscription)
    assert client.get(reverse("console:subscription_create")).status_code == 403
    assert client.post(reverse("console:subscription_create"), {"url": "https://x.example.com/",
                                                         "activity_types": ["lot.created"]}).status_code == 403
    for name in CHANGE_GETS:
        assert client.get(url(name, subscription.id)).status_code == 403, name
    Subscription.objects.filter(id=subscription.id).update(state=Subscription.State.PAUSED)  # so resume could act
    before = snapshot(subscription)
    _, posts = all_urls(subscription.id, delivery.id)
    for target, data in posts:
        response = client.post(target, data)
        assert response.status_code == 403, target
        assert b"Only administrators" in response.content
    assert snapshot(subscription) == before
    assert Subscription.objects.filter(organisation=subscription.organisation).count() == 1


def test_every_post_needs_the_csrf_token(alice, subscription, delivery):
    """Bad input: each POST without the CSRF token, then the same POST with it."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    _, posts = all_urls(subscription.id, delivery.id)
    posts.insert(0, (reverse("console:subscription_create"),
                     {"url": "https://new.example.com/in", "activity_types": ["lot.created"]}))
    before = snapshot(subscription)
    for target, data in posts:
        assert client.post(target, data).status_code == 403, target
    assert snapshot(subscription) == before
    assert Subscription.objects.count() == 1

    # The same request with the token goes through: the 403 above was the CSRF check.
    client.get(reverse("console:subscription_create"))
    token = client.cookies["csrftoken"].value
    response = client.post(url("pause", subscription.id), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Subscription.objects.get(id=subscription.id).state == Subscription.State.PAUSED


def test_logout_and_login_forms_are_csrf_protected(alice):
    """Bad input: the login and logout POSTs without a token."""
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("login"), {"username": "alice", "password": "correct horse battery"}).status_code == 403
    client.force_login(alice)
    assert client.post(reverse("logout")).status_code == 403
