"""Property-based tests generated from the served OpenAPI schema (schemathesis) against a live server.

Every operation, with a key of every scope, gets MAX_EXAMPLES generated requests (valid and invalid
bodies, query strings, path ids and headers): no answer is a 5xx, every status is one the schema
documents, and every body and content type matches what the schema says for that status.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.tests.conftest import new_key
from conftest import make_subscription

MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def served_schema(site, org, alice, no_wakeups, settings):
    settings.WEBHOOKS_API_RATE_LIMIT = 100_000  # the generated requests are many; the limit has its own test
    make_subscription(org, activity_types=["lot.created"], created_by=alice)
    return schemathesis.openapi.from_url(f"{site.url}/api/v1/openapi.json")


@pytest.fixture
def schema_key(org, alice) -> str:
    """A key with the write and events scopes (write includes read): every operation is open to it."""
    return new_key(org, "write", "events", user=alice)


schema = schemathesis.pytest.from_fixture("served_schema")


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_no_generated_request_gets_a_5xx_or_an_answer_outside_the_schema(case, schema_key):
    case.call_and_validate(headers={"Authorization": f"Bearer {schema_key}"}, checks=CHECKS)
