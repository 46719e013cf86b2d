"""A receiver's rate limit holds across two worker processes, and waiting for it holds no worker thread.

Real workers (two processes of eight threads), the real HTTPS receiver, both stores.
"""

import threading

import pytest

from bench.arrivals import busiest_second
from conftest import WORKER_ARGS, make_organisation, make_subscription, wait_until_finished
from delivery.models import Delivery
from delivery.tests.receiver import answer
from subscriptions.activity import record_activity

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

EVENTS = 300  # at 20/s: 15 s of sending
RATE = 20


def _record(org, n):
    return [record_activity(organisation=org, activity_type="lot.created", data={"lot_id": f"LOT-{i}"})
            for i in range(n)]


def test_300_events_to_an_endpoint_limited_to_20_a_second_all_arrive_never_more_than_21_in_a_second(
        require_services, org, receiver, celery_process):
    subscription, _ = make_subscription(org, url=receiver.url, max_per_second=RATE)
    events = _record(org, EVENTS)  # the backlog, before any worker runs
    celery_process(*WORKER_ARGS, "-n", "w1@%h")
    celery_process(*WORKER_ARGS, "-n", "w2@%h")

    received = receiver.wait_for(EVENTS, timeout=120)

    assert sorted(r.headers["webhook-id"] for r in received) == sorted(e.webhook_id for e in events)
    busiest = busiest_second([r.at for r in received])
    assert busiest <= RATE + 1, f"{busiest} requests arrived within one second"
    wait_until_finished(Delivery.objects.filter(subscription=subscription))
    assert not Delivery.objects.filter(subscription=subscription, attempt_count__gt=1).exists()  # no retry used


def test_an_endpoint_waiting_for_its_limit_holds_no_thread_so_another_endpoint_goes_meanwhile(
        require_services, org, receiver, celery_process):
    """One worker thread; an endpoint limited to 1/s with a backlog of 5 (4 s of waiting); another organisation's
    event recorded once the first limited request arrived arrives before the limited backlog is through."""
    limited_arrived = threading.Event()

    def act(handler):
        if handler.path == "/limited":
            limited_arrived.set()
        answer(handler, 200)

    receiver.default = act
    base = receiver.url.removesuffix("/hooks")
    make_subscription(org, url=f"{base}/limited", max_per_second=1)
    other_org = make_organisation("other")
    make_subscription(other_org, url=f"{base}/other")
    _record(org, 5)
    celery_process("worker", "--pool", "threads", "--concurrency", "1", "--without-mingle", "--without-gossip",
                   "--without-heartbeat", "--loglevel", "INFO")
    assert limited_arrived.wait(60)

    (other,) = _record(other_org, 1)
    received = receiver.wait_for(6, timeout=60)

    paths = [r.path for r in received]
    assert paths.count("/limited") == 5 and paths.count("/other") == 1
    assert paths.index("/other") < len(paths) - 1, paths  # it went while the limited endpoint waited
    assert received[paths.index("/other")].headers["webhook-id"] == other.webhook_id
