"""/metrics after a real delivery run: a worker and beat, an HTTPS receiver, then a stopped worker."""

import pytest

from conftest import WORKER_ARGS, make_subscription, wait_until
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


def test_counters_after_a_real_delivery_run(require_services, client, web_settings, org, receiver, celery_process,
                                            monkeypatch):
    """A success, a failure given up at once (no retries), and a wake-up lost and found by the sweeper."""
    web_settings.METRICS_TOKEN = TOKEN
    before = scrape(client)
    celery_process(*WORKER_ARGS, env={"WEBHOOKS_RETRY_SCHEDULE": ""})
    celery_process("beat", "--schedule", str(receiver.ca_dir / "beat-schedule"))
    make_subscription(org, url=receiver.url)

    # First, before any sender runs: the broker "forgets" the wake-up; the sweeper finds the delivery.
    with monkeypatch.context() as m:
        m.setattr("delivery.wakeups.endpoints_awaken", lambda ids: 0)
        swept = record_activity(organisation=org, activity_type="lot.created", data={"n": "swept"})
    wait_until(lambda: Delivery.objects.filter(event=swept, state=Delivery.State.SUCCEEDED).exists(), timeout=60,
               message="the swept delivery sent")
    receiver.script.append(503)
    failed = record_activity(organisation=org, activity_type="lot.created", data={"n": "failed"})
    wait_until(lambda: Delivery.objects.filter(event=failed, state=Delivery.State.FAILED).exists(), message="failed")
    record_activity(organisation=org, activity_type="lot.created", data={"n": "sent"})
    receiver.wait_for(3)
    wait_until(lambda: Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == 2, message="2 sent")

    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("webhooks_events_recorded_total") == 3
    assert delta("webhooks_attempts_total", outcome="succeeded", error_kind="none") == 2
    assert delta("webhooks_attempts_total", outcome="failed", error_kind="http_5xx") == 1
    assert delta("webhooks_attempt_duration_seconds_count") == 3
    assert delta("webhooks_sweeper_requeued_total") >= 1
    assert value(after, "webhooks_deliveries_due") == 0
