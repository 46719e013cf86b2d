"""/metrics after a real delivery run: a worker and beat, an HTTPS receiver, then a stopped worker."""

import pytest

from conftest import make_subscription, wait_until
from delivery.models import Delivery
from operations.tests.scrape import TOKEN, scrape, value
from subscriptions.activity import record_activity

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_backlog_gauges_follow_a_real_delivery_run(require_services, client, web_settings, org, receiver, worker):
    web_settings.METRICS_TOKEN = TOKEN
    make_subscription(org, url=receiver.url)
    for n in range(3):
        record_activity(organisation=org, activity_type="lot.created", data={"n": n})
    receiver.wait_for(3)
    wait_until(lambda: Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == 3, message="3 sent")
    wait_until(lambda: value(scrape(client), "webhooks_heartbeat_age_seconds", role="worker") < 30,
               timeout=30, message="the worker's heartbeat in /metrics")

    samples = scrape(client)
    assert value(samples, "webhooks_deliveries_due") == 0
    assert value(samples, "webhooks_oldest_due_delivery_age_seconds") == 0
    assert value(samples, "webhooks_heartbeat_age_seconds", role="scheduler") < 30

    # No worker: what is recorded now waits, and the gauges say so.
    worker.stop()
    for n in range(2):
        record_activity(organisation=org, activity_type="lot.created", data={"n": n})
    wait_until(lambda: value(scrape(client), "webhooks_oldest_due_delivery_age_seconds") >= 1, timeout=10,
               message="the oldest due delivery ageing")

    samples = scrape(client)
    assert value(samples, "webhooks_deliveries_due") == 2
    assert len(receiver.received) == 3
