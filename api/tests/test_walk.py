"""Every API URL, walked as the anonymous caller, a signed-in admin without a key (sessions do not open
the API), acme's read, write and events keys, and globex's key with every scope (mallory's).

The URLs come from django.urls.get_resolver() (the console walk's url_patterns), so an API operation
added later without an expectation here fails the test until one is written. Besides the status codes:
no answer shows a signing secret (one is shown only by create and regenerate, and never again), mallory's key never
sees acme's data, and nothing but acme's write key changes acme's webhook.
"""

import pytest

from api.tests.conftest import Api, new_key
from console.tests.test_tenancy import World, acme_marks, client_for, secrets_of, url_patterns
from delivery.models import Delivery
from subscriptions.models import Subscription, TrailEntry

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "session", "read", "write", "events", "mallory")


def _answers(read=200, write=200, events=403, mallory=404, anonymous=401, session=401) -> dict:
    return {"anonymous": anonymous, "session": session, "read": read, "write": write, "events": events,
            "mallory": mallory}


READ = _answers()
CHANGE = _answers(read=403)  # with write's own answer given per operation
NEW_EVENT = {"type": "lot.created", "data": {"lot_id": "WALK-1"}}
# name: (method, body, {role: status}). Another organisation's ids are 404, as on the pages; its own
# lists and creations are its own (200, 201).
EXPECTED = {
    "api:api-root": ("GET", None, {r: 404 for r in ROLES}),
    "api_not_found": ("GET", None, {r: 404 for r in ROLES}),  # any other URL under /api/: a problem 404
    "api:openapi-json": ("GET", None, {r: 200 for r in ROLES}),
    "api:openapi-view": ("GET", None, {r: 200 for r in ROLES}),
    "api:list_activity_types": ("GET", None, _answers(events=200, mallory=200)),
    "api:read_activity_type": ("GET", None, _answers(events=200, mallory=200)),
    "api:list_subscriptions": ("GET", None, _answers(mallory=200)),
    "api:create_subscription": ("POST", {"url": "https://walk.example.com/in", "activity_types": ["lot.created"]},
                                _answers(read=403, write=201, mallory=201)),
    "api:read_subscription": ("GET", None, READ),
    "api:update_subscription": ("PATCH", {"description": "walked"}, CHANGE),
    "api:delete_subscription": ("DELETE", None, CHANGE),
    "api:pause_subscription": ("POST", None, CHANGE),
    "api:resume_subscription": ("POST", None, CHANGE),
    "api:regenerate_secret": ("POST", {}, CHANGE),
    "api:send_test": ("POST", {"activity_type": "lot.created"}, {**CHANGE, "write": 202}),
    "api:list_deliveries": ("GET", None, READ),
    "api:read_delivery": ("GET", None, READ),
    "api:redeliver": ("POST", None, {**CHANGE, "write": 202}),
    "api:recover": ("POST", {"since": "2020-01-01T00:00:00Z"}, {**CHANGE, "write": 202}),
    "api:post_event": ("POST", NEW_EVENT, _answers(read=403, write=403, events=201, mallory=201)),
    "api:post_events": ("POST", {"events": [NEW_EVENT]}, _answers(read=403, write=403, events=201, mallory=201)),
    "api:read_event": ("GET", None, READ),
}
# Answers that show the signing secret, to the key that asked for it.
SHOWS_SECRET = {"api:create_subscription", "api:regenerate_secret"}


@pytest.fixture
def world(org, other_org, alice, mallory, receiver, no_wakeups):
    from conftest import send_now

    w = World(org, other_org, alice)
    Subscription.objects.filter(id=w.subscription.id).update(url=receiver.url)
    send_now(w.delivery.id)  # a finished delivery, with an attempt: something to read and to redeliver
    Subscription.objects.filter(id=w.subscription.id).update(url=w.subscription.url)
    assert Delivery.objects.get(id=w.delivery.id).state == Delivery.State.SUCCEEDED
    return w


def caller(role, org, other_org, alice, mallory):
    """Return (a client, the key it sends)."""
    if role == "anonymous":
        return Api(None), None
    if role == "session":
        api = Api(None)
        api.client = client_for(alice)
        return api, None
    if role == "mallory":
        return Api(key := new_key(other_org, "read", "write", "events", user=mallory)), key
    return Api(key := new_key(org, role, user=alice)), key


def acme_state(world):
    s = Subscription.objects.get(id=world.subscription.id)
    return (s.url, s.description, s.state, s.deleted_at, s.secret_encrypted,
            TrailEntry.objects.filter(subscription=s).count(),
            Delivery.objects.filter(id=world.delivery.id).values_list("state", "attempt_count").first())


@pytest.mark.parametrize("role", ROLES)
def test_every_api_url_answers_each_caller_as_expected_and_leaks_nothing(world, role, org, other_org, alice,
                                                                          mallory):
    api, key = caller(role, org, other_org, alice, mallory)
    before = acme_state(world)
    hidden = secrets_of(world)
    walked = 0
    for route, name in url_patterns():
        if not route.replace("^", "").startswith("api/"):
            continue
        assert name in EXPECTED, f"no expectation for API URL {route!r} (name {name!r}): add it to EXPECTED"
        method, body, answers = EXPECTED[name]
        path = world.fill(route)
        response = api.request(method, path, body, key=key)
        where = f"{method} {path} as {role}"
        assert response.status_code == answers[role], f"{where}: {response.status_code}, expected {answers[role]}"
        text = response.content.decode(errors="replace")
        if response.status_code >= 400 and name not in ("api:api-root",):
            assert response["Content-Type"] == "application/problem+json", where
            assert response.json()["status"] == response.status_code, where
        if response.status_code == 401:
            assert response["WWW-Authenticate"].startswith("Bearer"), where
        assert not any(h in text for h in hidden), f"{where} shows a signing secret"
        if name in SHOWS_SECRET and response.status_code < 300:  # shown once, to the key that asked: never again
            hidden += [response.json()["secret"], response.json()["secret"].removeprefix("whsec_")]
        assert world.key not in text and world.api_key.key_hash not in text, f"{where} shows an API key"
        if role == "mallory":
            assert not any(mark in text for mark in acme_marks(world)), f"{where} shows acme's data to mallory"
        if role != "write":
            assert acme_state(world) == before, f"{where} changed acme's webhook"
        # What acme's write key did (a delete, a pause, a redelivery) is undone: the next URL finds it as before.
        Subscription.objects.filter(id=world.subscription.id).update(deleted_at=None, state=Subscription.State.ACTIVE)
        walked += 1
    assert walked == len(EXPECTED)  # every operation was walked (operations that share a path each have a name)


def test_a_revoked_or_expired_key_is_refused_like_no_key(world, org, alice):
    from datetime import timedelta

    from django.utils import timezone

    from api.models import ApiKey
    from api.services import api_key_revoke

    key = new_key(org, "read", user=alice)
    api = Api(key)
    assert api.get("/api/v1/subscriptions").status_code == 200
    api_key_revoke(api_key=ApiKey.objects.get(prefix=key[:12]), by=alice)
    assert api.get("/api/v1/subscriptions").status_code == 401  # bad input: a revoked key
    expired = new_key(org, "read", user=alice)
    ApiKey.objects.filter(prefix=expired[:12]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Api(expired).get("/api/v1/subscriptions").status_code == 401  # bad input: an expired key
    for bad in ("", "whk_", key[:-1] + ("A" if key[-1] != "A" else "B"), "Basic " + key, "x" * 10_000):
        response = Api(None).get("/api/v1/subscriptions", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, bad[:40]
