"""Fixtures of the API's tests: acme's keys of each scope, globex's (mallory's) key, and a client that sends JSON."""

import json

import pytest
from django.test import Client

from api.services import api_key_create


class Api:
    """The test client speaking JSON with a key: api.get(path), api.post(path, body, key=..., headers=...)."""

    def __init__(self, key: str | None = None):
        self.client, self.key = Client(), key

    def request(self, method: str, path: str, body=None, *, key: str | None = "default", headers=None, raw=None):
        key = self.key if key == "default" else key
        extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()}
        if key is not None:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return getattr(self.client, method.lower())(path, data=data, content_type="application/json", **extra)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


def new_key(organisation, *scopes, user=None) -> str:
    return api_key_create(organisation=organisation, name=f"{'+'.join(scopes)} key", scopes=list(scopes),
                          created_by=user)[1]


@pytest.fixture(autouse=True)
def _plain_http(web_settings):
    """Requests over plain HTTP in tests: no redirect to HTTPS (web_settings)."""


@pytest.fixture
def read_key(org, alice) -> str:
    return new_key(org, "read", user=alice)


@pytest.fixture
def write_key(org, alice) -> str:
    return new_key(org, "write", user=alice)


@pytest.fixture
def events_key(org, alice) -> str:
    return new_key(org, "events", user=alice)


@pytest.fixture
def mallory_key(other_org, mallory) -> str:
    """Another organisation's key with every scope."""
    return new_key(other_org, "read", "write", "events", user=mallory)


@pytest.fixture
def api(write_key) -> Api:
    """A client with acme's write key (pass key=... for another, key=None for none)."""
    return Api(write_key)


@pytest.fixture
def no_wakeups(monkeypatch):
    """No broker needed: the rows are what these tests look at."""
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: 0)
