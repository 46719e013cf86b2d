"""Coalesced wake-ups: one waiting message per endpoint, and still every delivery arrives.

Runs on PostgreSQL and Redis (the only setup that coalesces); each test counts
the messages that reached this run's Redis queue, then lets a real worker
deliver to a real HTTPS receiver and checks what the receiver got.
"""

import pytest
import redis
from django.conf import settings
from django.db import connection
from standardwebhooks.webhooks import Webhook

from conftest import WORKER_ARGS, make_subscription, wait_until
from delivery import wakeups
from delivery.models import Attempt, Delivery
from subscriptions.activity import record_activity
from subscriptions.services import subscription_pause, subscription_resume, subscription_send_test

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(require_services):
    """Return a function giving the number of messages waiting in this run's Redis queue."""
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("wake-ups coalesce on PostgreSQL with a Redis broker (REQUIRE_SERVICES=1 always has both)")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)  # messages of earlier tests, whose rows are gone
    return lambda: client.llen(settings.CELERY_TASK_DEFAULT_QUEUE)


def _verified_ids(requests, secret) -> set[str]:
    return {Webhook(secret).verify(r.body, r.headers)["id"] for r in requests}


def test_a_burst_to_one_endpoint_queues_one_message_and_every_event_arrives(queue, org, receiver, celery_process):
    subscription, secret = make_subscription(org, url=receiver.url)
    events = [record_activity(organisation=org, activity_type="lot.created", data={"lot_id": f"L{i}"})
              for i in range(40)]
    assert queue() == 1  # not 40: the first delivery's message stands for the endpoint

    celery_process(*WORKER_ARGS)  # no beat: the sweeper is not what delivers them
    received = receiver.wait_for(40)
    assert _verified_ids(received, secret) == {e.webhook_id for e in events}
    wait_until(lambda: Delivery.objects.filter(subscription=subscription, state="succeeded").count() == 40,
               message="40 deliveries recorded as succeeded")
    # The batched sender's attempt rows (written with COPY) read back as the log shows them.
    attempts = Attempt.objects.filter(delivery__subscription=subscription).select_related("delivery__event")
    assert len(attempts) == 40
    for attempt in attempts:
        assert attempt.number == 1 and attempt.status_code == 200 and attempt.response_body == '{"ok":true}'
        assert attempt.request_headers["webhook-id"] == attempt.delivery.event.webhook_id
        assert attempt.response_headers["Content-Type"] == "application/json"
        assert attempt.url == receiver.url and attempt.error_kind == ""


def test_without_coalescing_every_delivery_gets_its_own_message(queue, org, settings):
    settings.WEBHOOKS_COALESCE_WAKEUPS = False
    make_subscription(org)
    for i in range(5):
        record_activity(organisation=org, activity_type="lot.created", data={"lot_id": f"L{i}"})
    assert queue() == 5


def test_each_endpoint_gets_its_own_message(queue, org):
    make_subscription(org, url="https://one.example.com/in")
    make_subscription(org, url="https://two.example.com/in")
    for i in range(3):
        record_activity(organisation=org, activity_type="lot.created", data={"lot_id": f"L{i}"})
    assert queue() == 2


def test_a_test_send_gets_its_own_message_while_the_endpoint_has_one_waiting(queue, org, receiver, celery_process):
    subscription, secret = make_subscription(org, url=receiver.url)
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "L1"})
    test_event = subscription_send_test(subscription=subscription, activity_type="lot.created")
    assert queue() == 2  # the senders that drain an endpoint leave test sends alone

    celery_process(*WORKER_ARGS)
    assert _verified_ids(receiver.wait_for(2), secret) == {event.webhook_id, test_event.webhook_id}


def test_resume_wakes_the_endpoint_once_for_all_it_held(queue, org, receiver, celery_process):
    subscription, secret = make_subscription(org, url=receiver.url)
    subscription_pause(subscription=subscription)
    events = [record_activity(organisation=org, activity_type="lot.created", data={"lot_id": f"L{i}"})
              for i in range(25)]
    assert queue() == 0  # held, not sent

    assert subscription_resume(subscription=subscription) == 25
    assert queue() == 1

    celery_process(*WORKER_ARGS)
    assert _verified_ids(receiver.wait_for(25), secret) == {e.webhook_id for e in events}


def test_a_key_left_by_a_dead_sender_delays_a_delivery_but_loses_nothing(queue, org, receiver, worker):
    """Bad input: the wake key of a sender that died (set by hand) holds back the caller's message."""
    subscription, secret = make_subscription(org, url=receiver.url)
    wakeups.endpoint_hold(subscription.id)  # as a sender that was killed mid-drain leaves it
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "L1"})

    # No message was published; the key expires and the sweeper (grace 3 s in tests) sends it.
    (request,) = receiver.wait_for(1, timeout=30)
    assert Webhook(secret).verify(request.body, request.headers)["id"] == event.webhook_id


def test_an_unreachable_redis_means_a_message_per_endpoint_not_a_lost_one(queue, settings):
    """Bad input: the broker URL points at a closed port; every endpoint is reported as needing a message."""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    assert wakeups.endpoints_claim(["a", "b", "a"]) == {"a", "b"}


def test_a_slow_endpoint_with_a_backlog_is_sent_over_several_connections_at_once(queue, org, receiver,
                                                                                 celery_process):
    """One message for a backlog, yet not one POST at a time: each full batch asks for a helper sender."""
    import threading
    import time

    from delivery.tests.receiver import answer

    in_flight, most, lock = [0], [0], threading.Lock()

    def slow(handler):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        answer(handler, 200)

    receiver.default = slow
    subscription, secret = make_subscription(org, url=receiver.url)
    events = [record_activity(organisation=org, activity_type="lot.created", data={"lot_id": f"L{i}"})
              for i in range(160)]
    assert queue() == 1

    celery_process(*WORKER_ARGS)
    received = receiver.wait_for(160, timeout=60)
    assert _verified_ids(received, secret) == {e.webhook_id for e in events}
    assert 2 <= most[0] <= settings.WEBHOOKS_ENDPOINT_CONCURRENCY, most[0]
    assert len({r.client_port for r in received}) >= 2  # several keep-alive connections, not one
