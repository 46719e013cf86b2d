"""Every URL pattern, walked as an anonymous user, a member (bob), an admin
(alice) and an admin of another organisation (mallory), and each answer checked.

The patterns come from django.urls.get_resolver(), so a page added later
without an expectation here fails the test until one is written. Parameters
are filled with real ids of acme's subscription, delivery and admin rows.
Besides the status codes: no answer ever carries a signing secret or its
ciphertext, mallory never sees acme's data, and nothing anyone but alice posts
changes acme's webhook.
"""

import re
import uuid

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLResolver, get_resolver

from api.models import ApiKey
from api.services import api_key_create
from conftest import make_subscription, send_now
from delivery.models import Attempt, Delivery, Event
from subscriptions.activity import record_activity
from subscriptions.models import Subscription, TrailEntry

pytestmark = pytest.mark.django_db

LOGIN = "login"  # a 302 to /accounts/login/?next=<the page>
ADMIN_LOGIN = "admin-login"  # a 302 to the Django admin's own login

USERS = ("anonymous", "bob", "alice", "mallory")

# name: {user: (GET answer, POST answer)}; POST as the form would send it, CSRF token included.
# Member (bob) may look, admin (alice) may change, another organisation's admin (mallory)
# gets 404 for anything of acme's, the anonymous user is sent to log in.
READ = {"anonymous": (LOGIN, 405), "bob": (200, 405), "alice": (200, 405), "mallory": (404, 405)}
CHANGE_FORM = {"anonymous": (LOGIN, LOGIN), "bob": (403, 403), "alice": (200, None), "mallory": (404, 404)}
CHANGE_POST = {"anonymous": (405, LOGIN), "bob": (405, 403), "alice": (405, None), "mallory": (405, 404)}
EXPECTED = {
    None: {u: (302, 302) for u in USERS},  # "/" leads to the Webhooks page
    "login": {u: (200, 200) for u in USERS},  # POSTed without credentials: the form again, with errors
    "logout": {u: (405, 302) for u in USERS},
    "console:subscription_list": {"anonymous": (LOGIN, LOGIN), "bob": (200, 405), "alice": (200, 405),
                           "mallory": (200, 405)},
    "console:event_list": {"anonymous": (LOGIN, LOGIN), "bob": (200, 405), "alice": (200, 405),
                           "mallory": (200, 405)},  # mallory's own organisation's events
    "console:event_catalogue": {"anonymous": (LOGIN, LOGIN), "bob": (200, 200), "alice": (200, 200),
                             "mallory": (200, 200)},
    "console:subscription_create": {"anonymous": (LOGIN, LOGIN), "bob": (403, 403), "alice": (200, None),
                             "mallory": (200, 200)},  # mallory's own organisation; her empty form is refused
    "console:subscription_detail": READ,
    "console:subscription_log": READ,
    "console:delivery_detail": READ,
    "console:subscription_secret": {"anonymous": (LOGIN, 405), "bob": (403, 405), "alice": (200, 405),
                             "mallory": (404, 405)},
    "console:subscription_edit": CHANGE_FORM,
    "console:subscription_regenerate": CHANGE_FORM,
    "console:subscription_stop_old_secret": CHANGE_FORM,  # GET: the confirmation
    "console:subscription_delete": CHANGE_FORM,
    "console:subscription_test": CHANGE_FORM,  # GET: the payload to see and edit
    "console:deliveries_bulk_redeliver": CHANGE_FORM,  # GET: the count to confirm
    "console:subscription_try_now": CHANGE_FORM,  # GET: the confirmation (or why there is nothing to try)
    "console:subscription_pause": CHANGE_POST,
    "console:subscription_resume": CHANGE_POST,
    # GET with a date: the count to confirm; without one, back to the webhook with the error.
    "console:subscription_recover": {"anonymous": (LOGIN, LOGIN), "bob": (403, 403), "alice": (302, None),
                              "mallory": (404, 404)},
    "console:delivery_redeliver": CHANGE_POST,
    # Administration > API keys: the organisation's admins only (mallory: her own organisation's page;
    # an empty POST is the empty form again, as Create Webhook's); acme's key is 404 to her.
    "console:api_keys": {"anonymous": (LOGIN, LOGIN), "bob": (403, 403), "alice": (200, 200),
                         "mallory": (200, 200)},
    "console:api_key_created": {"anonymous": (LOGIN, 405), "bob": (403, 405), "alice": (200, 405),
                                "mallory": (404, 405)},
    "console:api_key_revoke": {"anonymous": (LOGIN, LOGIN), "bob": (403, 403), "alice": (200, None),
                               "mallory": (404, 404)},
    # Operations: no session involved, the same for everyone. No worker runs here, so /readyz says
    # 503 (failing); /metrics is 404 while METRICS_TOKEN is not configured.
    # Each user's own alert preferences: nothing of another organisation's to see.
    "console:notifications": {"anonymous": (LOGIN, LOGIN), "bob": (200, None), "alice": (200, None),
                             "mallory": (200, None)},
    # The header's switcher: only to one of the user's own organisations (POSTed without one: 404).
    "console:organisation_switch": {"anonymous": (LOGIN, LOGIN), "bob": (405, 404), "alice": (405, 404),
                             "mallory": (405, 404)},
    "healthz": {u: (200, 405) for u in USERS},
    "readyz": {u: (503, 405) for u in USERS},
    "metrics": {u: (404, 405) for u in USERS},
}
# The Django admin is for superusers only: none of the four is staff.
ADMIN_EXPECTED = {u: (ADMIN_LOGIN, ADMIN_LOGIN) for u in USERS}
ADMIN_SPECIAL = {
    "admin:login": {u: (200, 200) for u in USERS},
    "admin:logout": {u: (302, 302) for u in USERS},  # to the admin index, which asks for a login
}


def url_patterns(resolver=None, prefix="", namespace=None):
    """Yield (route, qualified name) for every pattern, includes unfolded."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from url_patterns(pattern, prefix + str(pattern.pattern), inner)
        else:
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield prefix + str(pattern.pattern), name


class World:
    """acme's webhook with a delivery (alice's), mallory's own webhook, a superuser's rows."""

    def __init__(self, org, other_org, alice):
        self.subscription, self.secret = make_subscription(
            org, url=f"https://acme-{uuid.uuid4().hex[:8]}.example.com/in", created_by=alice
        )
        self.event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "ACME-LOT"})
        self.delivery = Delivery.objects.get(event=self.event)
        self.theirs, _ = make_subscription(other_org, url="https://globex.example.com/in")
        self.api_key, self.key = api_key_create(organisation=org, name="ERP sync", scopes=["read"], created_by=alice)

    def fill(self, route: str) -> str:
        """Return a concrete path for route, with real ids in its parameters."""
        route = route.replace("^", "").replace("$", "")
        route = re.sub(r"\(\?P<app_label>[^)]*\)", "subscriptions", route)
        route = re.sub(r"\(\?P<url>\.\*\)", "no-such-page/", route)
        model_match = re.match(r"django-admin/(\w+)/(\w+)/", route)

        def value(match):
            name = match.group(2)
            if name == "subscription_id":
                return str(self.subscription.id)
            if name == "delivery_id":
                return str(self.delivery.id)
            if name == "api_key_id":
                return str(self.api_key.id)
            if name == "event_id":
                return self.event.webhook_id
            if name == "code":  # an activity type (the API's catalogue)
                return "lot.created"
            if name == "content_type_id":
                return str(ContentType.objects.get_for_model(Subscription).id)
            if name == "object_id" and model_match:
                return self._admin_object(*model_match.groups())
            if name == "object_id":
                return str(self.subscription.id)
            if name == "id":  # the admin's user password page
                return str(self.subscription.created_by_id)
            raise AssertionError(f"no value for <{name}> in {route}: teach World.fill")

        path = re.sub(r"<(?:(\w+):)?(\w+)>", value, route)
        assert "(" not in path and "<" not in path, f"unfilled pattern {route}"
        return "/" + path

    def _admin_object(self, app_label, model_name) -> str:
        model = apps.get_model(app_label, model_name)
        preferred = {Subscription: self.subscription, Delivery: self.delivery, Event: self.event}
        obj = preferred.get(model) or model.objects.order_by("pk").first()
        return str(obj.pk) if obj else "1"


@pytest.fixture
def world(org, other_org, alice, bob, mallory, receiver):
    w = World(org, other_org, alice)
    # A recorded attempt too, so that the delivery log has something to show and leak.
    Subscription.objects.filter(id=w.subscription.id).update(url=receiver.url)
    send_now(w.delivery.id)
    Subscription.objects.filter(id=w.subscription.id).update(url=w.subscription.url)
    assert Attempt.objects.filter(delivery=w.delivery).exists()
    return w


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def expectation(name, route):
    if route.startswith("django-admin/"):
        return ADMIN_SPECIAL.get(name, ADMIN_EXPECTED)
    assert name in EXPECTED, f"no expectation for URL {route!r} (name {name!r}): add it to EXPECTED"
    return EXPECTED[name]


def check_answer(response, expected, path) -> None:
    where = f"{response.request['REQUEST_METHOD']} {path}"
    if expected is LOGIN:
        assert response.status_code == 302, where
        assert response.headers["Location"].startswith("/accounts/login/?next="), where
    elif expected is ADMIN_LOGIN:
        assert response.status_code == 302, where
        assert response.headers["Location"].startswith("/django-admin/login/"), where
    else:
        assert response.status_code == expected, f"{where}: {response.status_code}, expected {expected}"


def secrets_of(world) -> list[str]:
    fresh = Subscription.objects.get(id=world.subscription.id)
    return [world.secret, world.secret.removeprefix("whsec_"), fresh.secret_encrypted, world.key,
            world.api_key.key_hash]


def acme_marks(world) -> list[str]:
    return [world.subscription.url, str(world.subscription.id), world.subscription.id.hex,
            str(world.delivery.id), "ACME-LOT", "Acme Cultivation"]


def snapshot(world):
    s = Subscription.objects.get(id=world.subscription.id)
    return (s.url, s.state, s.deleted_at, s.secret_encrypted, TrailEntry.objects.count(), Event.objects.count(),
            Delivery.objects.filter(subscription=s).values_list("state", "attempt_count").first(),
            list(ApiKey.objects.values_list("id", "revoked_at")))


@pytest.mark.parametrize("who", USERS)
def test_every_url_answers_each_role_as_expected_and_leaks_nothing(web_settings, world, who, request):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    client = client_for(user)
    before = snapshot(world)
    hidden = secrets_of(world)
    checked = 0
    for route, name in url_patterns():
        if route.replace("^", "").startswith("api/"):
            continue  # the API authenticates keys, not sessions: walked with keys in api/tests/test_walk.py
        path = world.fill(route)
        get_expected, post_expected = expectation(name, route)[who]
        response = client.get(path)
        check_answer(response, get_expected, path)
        body = response.content.decode(errors="replace")
        assert not any(h in body for h in hidden), f"GET {path} shows the signing secret to {who}"
        if who == "mallory" and not route.startswith("accounts/"):
            assert not any(mark in body for mark in acme_marks(world)), f"GET {path} shows acme's data to mallory"
        if post_expected is not None:  # alice's POSTs change things; their effects are tested per page
            response = client.post(path, {})
            check_answer(response, post_expected, path)
            assert not any(h in response.content.decode(errors="replace") for h in hidden)
        checked += 1
        if name == "logout":
            client = client_for(user)  # the POST logged the user out: log in again
    assert checked > 40  # the walk really covered the app's and the admin's patterns
    assert snapshot(world) == before, f"{who}'s requests changed acme's webhook"


def test_mallory_sees_her_own_webhook_but_not_acmes(web_settings, world, mallory):
    """Control for the walk: the list shows the signed-in organisation's webhooks, and only those."""
    body = client_for(mallory).get("/administration/webhooks/").content.decode()
    assert "https://globex.example.com/in" in body
    assert world.subscription.url not in body
    alice_body = client_for(world.subscription.created_by).get("/administration/webhooks/").content.decode()
    assert world.subscription.url in alice_body and "https://globex.example.com/in" not in alice_body


def test_every_post_without_a_csrf_token_is_refused(web_settings, world, alice):
    # Bad input: cross-site POSTs (no CSRF token) to every URL, as the admin who could make them.
    client = client_for(alice, enforce_csrf_checks=True)
    before = snapshot(world)
    for route, _name in url_patterns():
        if route.replace("^", "").startswith("api/"):
            continue  # no session works there at all (api/tests/test_walk.py: 401 for a signed-in admin)
        path = world.fill(route)
        response = client.post(path, {"url": "https://evil.example.com/", "activity_types": "lot.created"})
        assert response.status_code == 403, f"POST {path} without a CSRF token: {response.status_code}"
    assert snapshot(world) == before


def test_the_django_admin_shows_a_superuser_everything_but_the_secret(web_settings, world):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "root-password-1234")
    client = client_for(root)
    hidden = secrets_of(world)
    seen = 0
    for route, name in url_patterns():
        if not route.startswith("django-admin/") or name in ("admin:logout", None):
            continue
        path = world.fill(route)
        response = client.get(path)
        assert response.status_code < 500, f"GET {path}: {response.status_code}"
        if response.status_code == 200:
            seen += 1
            body = response.content.decode(errors="replace")
            assert not any(h in body for h in hidden), f"the Django admin shows a secret at {path}"
    change = client.get(f"/django-admin/subscriptions/subscription/{world.subscription.id}/change/")
    assert change.status_code == 200 and world.subscription.url in change.content.decode()
    assert seen > 10
