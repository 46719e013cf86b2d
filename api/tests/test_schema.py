"""Property-based tests generated from the served OpenAPI schema (schemathesis) against a live server.

Every operation gets MAX_EXAMPLES generated requests three ways: valid requests aimed at acme's real
webhook, delivery and event (so they reach the services), valid requests with generated ids, and
invalid requests (schemathesis' negative mode: wrong types, missing fields, bad headers), all with a
key that has every scope. No answer is a 5xx, every status is one the schema documents, and every
body and content type matches what the schema says for that status.

(Driven with hypothesis' @given over each operation's strategy: schemathesis' lazy pytest loader
does not run under pytest 9.)
"""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.tests.conftest import new_key
from conftest import make_subscription
from delivery.models import Delivery
from subscriptions.activity import record_activity

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = 10  # 18 operations x 3 ways x 10: 540 generated requests a run (20: 61 s of a store's suite)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def test_no_generated_request_gets_a_5xx_or_an_answer_outside_the_schema(site, org, alice, no_wakeups, settings):
    settings.WEBHOOKS_API_RATE_LIMIT = 1_000_000  # the generated requests are many; the limit has its own test
    subscription, _ = make_subscription(org, activity_types=["lot.created"], created_by=alice)
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-1"})
    real = {"subscription_id": str(subscription.id), "delivery_id": str(Delivery.objects.get(event=event).id),
            "event_id": event.webhook_id, "code": "lot.created"}
    key = new_key(org, "write", "events", user=alice)
    schema = schemathesis.openapi.from_url(f"{site.url}/api/v1/openapi.json")
    session = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 18  # every operation of the API is in the served schema
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        ids = {name: value for name, value in real.items() if name in names}
        strategies = [operation.as_strategy(path_parameters=ids), operation.as_strategy(),
                      operation.as_strategy(GenerationMode.NEGATIVE)]
        for strategy in strategies:
            @FUZZ
            @given(case=strategy)
            def call(case):
                case.call_and_validate(session=session, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

            call()
