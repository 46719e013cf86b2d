"""Every console URL and form fuzzed with generated query parameters and fields, as each role: no 5xx.

The URLs are the tenancy walk's (test_tenancy.url_patterns: every pattern Django knows but the
Django admin's and the API's), so a page added later is fuzzed without a change here. A page's field names
are found the same way: the inputs its forms show, and every name its view reads from the query
string or the posted form when asked with none (recorded as MultiValueDict is read). Values
are those that broke pages before, by the kind of field (dates at the ends of the calendar,
cursors pointing there, JSON nested a thousand deep, header values outside ASCII, numbers
too large for any column, ids of nothing) and hypothesis-generated text.

Two walks, as the anonymous user, a member, an admin and another organisation's admin, GET
and POST to every URL: the edge sweep sends each page every edge value of each kind (to all
its fields of that kind at once, the others absent), and hypothesis sends FUZZ_EXAMPLES random
sets of fields to every page. The test client raises a view's exception, so a 500 fails
with its traceback; any other 5xx fails on its status.
"""

import base64
import contextlib
import re
import uuid

import pytest
from django.utils.datastructures import MultiValueDict
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import send_now
from console.tests.test_tenancy import USERS, World, client_for, url_patterns
from delivery.models import Delivery
from subscriptions.models import Subscription

pytestmark = pytest.mark.django_db

FUZZ_EXAMPLES = 10
# No shrinking: one example is every URL twice over, and the failing request names its path and fields.
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


ANY = ["", "-1", str(2**63), "a\x00b", "\x85\u2028\u202e", "é" * 300, "x" * 70_000, "[]"]
EDGES = {
    "any": ANY,
    "json": ['{"a":' * 941 + "1" + "}" * 941, "[" * 5000, '{"lot_id": "L", "weight_grams": 1e999}',
             '{"a": "\\ud800"}', '{"lot_id": "' + "x" * 300_000 + '"}', "[1, 2]", "{", '{"a": NaN}'],
    "cursor": [_cursor(f"9999-12-31T23:59:59-14:00|{uuid.uuid4().hex}"),
               _cursor(f"0001-01-01T00:00:00+14:00|{uuid.uuid4().hex}"), _cursor("2026-01-01T00:00:00|x"),
               _cursor(f"2026-01-01T00:00:00|{uuid.uuid4().hex}"), "%%%", "=" * 9, "Zm9v"],
    "date": ["9999-12-31T23:59", "9999-12-31 23:59:59", "0001-01-01", "0001-01-01T00:00", "10000-01-01",
             "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
             "2026-02-30", "2026-13-01T25:61", "1970-01-01T00:00:00+14:00", "-1"],
    "number": ["-1", "0", str(2**31), str(2**63), str(-(2**63) - 1), "1e9", "nan", "25", "24"],
    "id": [str(uuid.uuid4()), "evt_" + "0" * 32, "0" * 32, "00000000-0000-0000-0000-00000000000g", "'; DROP--"],
    "header": ["TOPSECRET-k\u20acy-42", "a\x85", "two\r\nlines", "Host", "webhook-id", "********", "v" * 1001],
    "url": ["https://evil.example/", "javascript:alert(1)", "//evil.example/", "http://127.0.0.1/", "https://[::1]/"],
}
# The kind of a field, by its name (the first that matches).
KINDS = [("json", re.compile(r"^data$")), ("cursor", re.compile(r"^before$")),
         ("date", re.compile(r"since|until|date|_at$|as_of")),
         ("number", re.compile(r"page|hours|count|range|limit|confirmed")),
         ("id", re.compile(r"^(q|organisation|event|id)$|_id$")), ("header", re.compile(r"^header_")),
         ("url", re.compile(r"url|next"))]


def kind_of(name: str) -> str:
    return next((kind for kind, pattern in KINDS if pattern.search(name)), "any")


def edges_for(name: str) -> list[str]:
    """Return the edge values of a field, by the kind its name says, and the ones every field gets."""
    kind = kind_of(name)
    return EDGES[kind] + (ANY if kind != "any" else [])


text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)  # lone surrogates cannot travel in UTF-8


@st.composite
def parameters(draw, names: list[str]) -> dict:
    """Return fields for a page: mostly its own names, some stray; values its kind's edges or text; some repeated."""
    stray = [text, st.integers(0, 10_000).map(lambda n: f"header_name_{n}")]
    own = [st.sampled_from(names)] * 2 if names else []
    keys = draw(st.lists(st.one_of(*own, *stray), max_size=8, unique=True))
    params = {}
    for key in keys:
        value = st.one_of(st.sampled_from(edges_for(key)), text, st.integers().map(str))
        params[key] = draw(st.one_of(value, value, st.lists(value, min_size=2, max_size=3)))
    return params


@pytest.fixture
def pages(web_settings, org, other_org, alice, bob, mallory, receiver):
    """Return (world, {path: its field names}) for every URL but the Django admin's."""
    world = World(org, other_org, alice)
    Subscription.objects.filter(id=world.subscription.id).update(url=receiver.url)
    send_now(world.delivery.id)  # a recorded attempt: the log and the delivery page have something to show
    assert Delivery.objects.get(id=world.delivery.id).attempt_count == 1
    admin = client_for(alice)
    names = {}
    for route, _ in url_patterns():
        if route.startswith("django-admin/") or route.startswith("accounts/logout"):
            continue
        if route.replace("^", "").startswith("api/"):
            continue  # the API is fuzzed from its own schema (api/tests/test_schema.py)
        path = world.fill(route)
        with names_read() as read:
            shown = set(re.findall(r'name="([^"]+)"', admin.get(path).content.decode(errors="replace")))
            admin.post(path, {})
        names[path] = sorted({n for n in shown | read if isinstance(n, str)} - {"csrfmiddlewaretoken"})
        Subscription.objects.filter(id=world.subscription.id).update(deleted_at=None, state=Subscription.State.ACTIVE)
    names["/accounts/logout/"] = []
    assert len(names) > 20  # the console's pages, the account's and the probes
    assert {"data", "activity_type"} <= set(names[world.fill("administration/webhooks/<uuid:subscription_id>/test/")])
    assert {"before", "since", "until"} <= set(names[world.fill("administration/webhooks/<uuid:subscription_id>/")])
    return world, names


@contextlib.contextmanager
def names_read():
    """Yield the set of names any request's query string or form is asked for meanwhile."""
    read = set()
    get, getlist, contains = MultiValueDict.__getitem__, MultiValueDict.getlist, dict.__contains__

    def recorded(original):
        def method(self, key, *args, **kwargs):
            read.add(key)
            return original(self, key, *args, **kwargs)
        return method

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MultiValueDict, "__getitem__", recorded(get))
        patch.setattr(MultiValueDict, "getlist", recorded(getlist))
        patch.setattr(MultiValueDict, "__contains__", recorded(contains), raising=False)
        yield read


class Walk:
    """One role's requests: GET and POST to a path, each answer checked; the user logged in again after logout."""

    def __init__(self, user, world):
        self.user, self.world, self.client, self.sent = user, world, client_for(user), 0

    def send(self, path: str, params: dict) -> None:
        for method in ("get", "post"):
            response = getattr(self.client, method)(path, params)
            self.sent += 1
            # /readyz's 503 is its answer (no worker runs here), not a failure of the page.
            allowed = 503 if path == "/readyz" and method == "get" else 499
            assert response.status_code <= allowed, f"{method.upper()} {path} {params!r}: {response.status_code}"
        if path.startswith("/accounts/logout"):
            self.client = client_for(self.user)

    def restore(self) -> None:
        """Undo what an admin's POST may have done to acme's webhook (a delete, a pause): its pages stay found."""
        Subscription.objects.filter(id=self.world.subscription.id).update(
            deleted_at=None, state=Subscription.State.ACTIVE)


@pytest.mark.parametrize("who", USERS)
def test_no_console_url_answers_5xx_to_edge_values_or_generated_fields(pages, who, request):
    world, names = pages
    walk = Walk(None if who == "anonymous" else request.getfixturevalue(who), world)

    # The edge sweep: each kind's edge values to all fields of that kind at once.
    for path, fields in names.items():
        walk.send(path, {})
        for kind in sorted({kind_of(f) for f in fields}):
            for value in EDGES[kind]:
                walk.send(path, {f: value for f in fields if kind_of(f) == kind})
                walk.restore()
    swept = walk.sent
    assert swept > 300

    # Generated: each example a set of fields for every URL.
    @FUZZ
    @given(data=st.data())
    def every_url(data):
        for path, fields in names.items():
            walk.send(path, data.draw(parameters(fields), label=path))
        walk.restore()

    every_url()
    assert walk.sent - swept >= FUZZ_EXAMPLES * len(names) * 2  # every example went to every URL, both methods
