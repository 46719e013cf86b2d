"""delivery/0012 keeps the last failure on the breaker's record: the records of endpoints failing at the upgrade
get theirs from their latest attempt, as the sender writes it with each failure from then on."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from conftest import make_subscription
from delivery.models import EndpointHealth
from delivery.tests.test_health_view import attempt, deliver

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = ("delivery", "0011_delivery_failed_index"), ("delivery", "0012_endpoint_health_last_failure")


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def _migrate_to_latest():
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("delivery"))


def test_the_upgrade_fills_in_the_last_failure_of_failing_endpoints_from_their_latest_attempt(org):
    now = timezone.now()
    failing, _ = make_subscription(org, url="https://failing.example.com/in")
    refused, _ = make_subscription(org, url="https://refused.example.com/in")
    healthy, _ = make_subscription(org, url="https://healthy.example.com/in")
    d = deliver(failing, attempts=3)
    attempt(d, at=now - timedelta(hours=2), status_code=200)  # before the run of failures
    attempt(d, at=now - timedelta(minutes=30), status_code=500)
    last = attempt(d, at=now - timedelta(minutes=5), status_code=503)
    r = deliver(refused, attempts=1)
    refused_at = attempt(r, at=now - timedelta(minutes=3), error_kind="connection",
                         error_message="Connection refused by 203.0.113.7:443")
    try:
        old = _migrate(BEFORE).get_model("delivery", "EndpointHealth")
        old.objects.create(subscription_id=failing.id, url=failing.url, consecutive_failures=2,
                           failing_since=now - timedelta(minutes=30))
        old.objects.create(subscription_id=refused.id, url=refused.url, consecutive_failures=1,
                           failing_since=now - timedelta(minutes=3))
        old.objects.create(subscription_id=healthy.id, url=healthy.url)  # no failure to keep
    finally:
        _migrate(AFTER)
        _migrate_to_latest()  # the rest of the suite runs on the whole schema
    records = {r.subscription_id: r for r in EndpointHealth.objects.all()}
    assert (records[failing.id].last_error, records[failing.id].last_failed_at) == ("HTTP 503", last.started_at)
    assert (records[refused.id].last_error, records[refused.id].last_failed_at) == (
        "Connection refused by 203.0.113.7:443", refused_at.started_at)
    assert (records[healthy.id].last_error, records[healthy.id].last_failed_at) == ("", None)
