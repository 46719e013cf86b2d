"""Organisation API keys: stored as a hash only, found with one indexed query, last use written once a minute."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import ApiKey
from api.selectors import api_key_for_token
from api.services import api_key_create, key_hash
from api.tests.conftest import Api

pytestmark = pytest.mark.django_db


def test_a_new_key_is_returned_once_and_only_its_hash_and_prefix_are_stored(org, alice):
    api_key, key = api_key_create(organisation=org, name="ERP sync", scopes=["read", "events"], created_by=alice)
    assert key.startswith(api_key.prefix + "_") and api_key.prefix.startswith("whk_") and len(key) == 45
    stored = ApiKey.objects.filter(id=api_key.id).values()[0]
    assert key not in str(stored) and key[len(api_key.prefix) + 1:] not in str(stored)
    assert stored["key_hash"] == key_hash(key) and stored["scopes"] == ["read", "events"]
    other = api_key_create(organisation=org, name="ERP sync", scopes=["read"])[1]
    assert other != key


@pytest.mark.parametrize("bad", [
    {"name": "  ", "scopes": ["read"]},  # no name
    {"name": "x", "scopes": []},  # no scope
    {"name": "x", "scopes": ["read", "admin"]},  # a scope that does not exist
    {"name": "x", "scopes": ["read"], "expires_at": timezone.now() - timedelta(days=1)},  # expired at birth
])
def test_a_key_without_a_name_a_known_scope_or_a_future_expiry_is_refused(org, bad):
    with pytest.raises(ValidationError):
        api_key_create(organisation=org, **bad)
    assert not ApiKey.objects.exists()


def test_checking_a_key_costs_one_query_and_last_use_is_written_at_most_once_a_minute(org, alice, read_key,
                                                                                     django_assert_num_queries):
    with django_assert_num_queries(1):
        found = api_key_for_token(token=read_key)
    assert found.organisation == org  # joined in the same query
    api = Api(read_key)
    with time_machine.travel(timezone.now(), tick=False):
        api.get("/api/v1/activity-types")  # the first use is written
        with CaptureQueriesContext(connection) as second:
            assert api.get("/api/v1/activity-types").status_code == 200  # within the minute: no write
        assert not [q for q in second.captured_queries if q["sql"].startswith("UPDATE")]
        assert len(second.captured_queries) == 1  # the catalogue itself reads nothing
    first_use = ApiKey.objects.get(prefix=read_key[:12]).last_used_at
    assert first_use is not None
    with time_machine.travel(first_use + timedelta(seconds=61), tick=False):
        api.get("/api/v1/activity-types")
    assert ApiKey.objects.get(prefix=read_key[:12]).last_used_at == first_use + timedelta(seconds=61)


def test_a_write_key_reads_an_events_key_only_posts_events(org, alice, write_key, events_key):
    assert Api(write_key).get("/api/v1/subscriptions").status_code == 200
    assert Api(events_key).get("/api/v1/subscriptions").status_code == 403
    response = Api(events_key).post("/api/v1/subscriptions", {"url": "https://x.example.com/", "activity_types": []})
    assert response.status_code == 403
    assert response.json()["detail"] == "This key does not have the 'write' scope."


def test_the_rate_limit_answers_429_with_retry_after_per_key(settings, org, alice, read_key, write_key):
    settings.WEBHOOKS_API_RATE_LIMIT = 3
    from django.core.cache import cache

    cache.clear()
    with time_machine.travel("2026-12-01T10:00:30Z", tick=False):
        answers = [Api(read_key).get("/api/v1/activity-types").status_code for _ in range(4)]
        refused = Api(read_key).get("/api/v1/activity-types")
        other = Api(write_key).get("/api/v1/activity-types")  # another key has its own count
    assert answers == [200, 200, 200, 429]
    assert refused.status_code == 429 and refused["Retry-After"] == "30"
    assert refused["Content-Type"] == "application/problem+json"
    assert other.status_code == 200
    with time_machine.travel("2026-12-01T10:01:00Z", tick=False):
        assert Api(read_key).get("/api/v1/activity-types").status_code == 200  # the next minute


def test_a_body_over_the_limit_is_refused_before_it_is_read(events_key):
    from api.auth import MAX_REQUEST_BYTES

    # Bad input: a body one byte over the limit.
    response = Api(events_key).post("/api/v1/events", raw="x" * (MAX_REQUEST_BYTES + 1))
    assert response.status_code == 413
    assert response.json()["title"] == "Request too large"
