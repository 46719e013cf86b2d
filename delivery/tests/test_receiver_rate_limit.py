"""A receiver's rate limit holds across two worker processes, and waiting for it holds no worker thread.

Real workers (processes of eight threads), the real HTTPS receiver, both stores. Where a test compares
another endpoint's latency with a calm measurement, both are taken in the test, on the same workers, and a
calm figure under CALM_FLOOR_MS counts as CALM_FLOOR_MS (see there): the bound is "within 2x calm" as the
issue asks, robust on a loaded 2-core machine, and still far below what a held thread costs.
"""

import threading
import time

import pytest

from bench.arrivals import busiest_second, percentile
from conftest import WORKER_ARGS, make_organisation, make_subscription, wait_until, wait_until_finished
from delivery.models import Delivery
from delivery.tests.receiver import answer
from subscriptions.activity import record_activity

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

EVENTS = 300  # at 20/s: 15 s of sending
RATE = 20
# A calm latency under this (ms) counts as this much. On a shared 2-core machine a pause of the scheduler, the
# garbage collector or the database of a couple hundred ms is common and says nothing about the sender; a
# thread held by an endpoint waiting for its limit would delay the others by up to its interval (1 s at 1/s,
# and by seconds once every thread waits): far above 2x this.
CALM_FLOOR_MS = 250.0


def _record(org, n):
    return [record_activity(organisation=org, activity_type="lot.created", data={"lot_id": f"LOT-{i}"})
            for i in range(n)]


def _latencies(org, receiver, path: str, *, rate: float, seconds: float) -> list[float]:
    """Record one event of `org` every 1/rate s for `seconds`; return the ms from each one's recording (its
    call's start) to its arrival at `path`, once all arrived."""
    recorded = {}
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        at = time.time()
        (event,) = _record(org, 1)
        recorded[event.webhook_id] = at

    def arrivals():
        seen = {r.headers["webhook-id"]: r.at for r in list(receiver.received) if r.path == path}
        return seen if recorded.keys() <= seen.keys() else None

    seen = wait_until(arrivals, timeout=60, message=f"every event at {path}")
    return [(seen[msg_id] - at) * 1000 for msg_id, at in recorded.items()]


def _arrived(receiver, prefix: str, count: int) -> list:
    """Return the requests to paths that start with `prefix`, once there are `count` (at most 120 s)."""
    def arrived():
        got = [r for r in list(receiver.received) if r.path.startswith(prefix)]
        return got if len(got) >= count else None

    return wait_until(arrived, timeout=120, message=f"{count} requests to {prefix}")


def _twice_calm(calm: float) -> float:
    return 2 * max(calm, CALM_FLOOR_MS)


def test_300_events_to_an_endpoint_limited_to_20_a_second_all_arrive_never_more_than_21_in_a_second(
        require_services, org, receiver, celery_process):
    """Meanwhile another organisation's endpoint receiving 20 events a second keeps its p99 within 2x calm
    (its calm p99 measured first, on the same two workers)."""
    subscription, _ = make_subscription(org, url=receiver.url, max_per_second=RATE)
    other_org = make_organisation("other")
    other_path = "/other"
    make_subscription(other_org, url=receiver.url.removesuffix("/hooks") + other_path)
    celery_process(*WORKER_ARGS, "-n", "w1@%h")
    celery_process(*WORKER_ARGS, "-n", "w2@%h")
    _latencies(other_org, receiver, other_path, rate=RATE, seconds=1)  # the workers warm up
    calm = _latencies(other_org, receiver, other_path, rate=RATE, seconds=5)

    events = _record(org, EVENTS)  # the backlog: 15 s of sending at 20/s
    beside = _latencies(other_org, receiver, other_path, rate=RATE, seconds=8)
    limited_meanwhile = sum(r.path == "/hooks" for r in list(receiver.received))
    received = _arrived(receiver, "/hooks", EVENTS)

    assert sorted(r.headers["webhook-id"] for r in received) == sorted(e.webhook_id for e in events)
    busiest = busiest_second([r.at for r in received])
    assert busiest <= RATE + 1, f"{busiest} requests arrived within one second"
    assert limited_meanwhile < EVENTS  # the other organisation was measured while the backlog was sending
    assert percentile(beside, 99) <= _twice_calm(percentile(calm, 99)), (
        f"p99 {percentile(beside, 99):.0f} ms beside the limited endpoint, {percentile(calm, 99):.0f} ms calm")
    wait_until_finished(Delivery.objects.filter(subscription=subscription))
    assert not Delivery.objects.filter(subscription=subscription, attempt_count__gt=1).exists()  # no retry used


def test_50_endpoints_limited_to_1_a_second_with_a_backlog_do_not_delay_another_endpoint_beyond_2x_calm(
        require_services, receiver, celery_process):
    """Waiting holds no thread: 8 worker threads, 50 endpoints limited to 1/s with 10 events each (10 s of
    sending, 500 deliveries); while they wait, another organisation's endpoint receiving 4 events a second keeps
    its median and p90 within 2x of theirs measured calm, on the same worker, before the backlog."""
    base = receiver.url.removesuffix("/hooks")
    # Spread over 10 organisations: each organisation's own cap on senders (delivery.slots) does not hide a
    # thread held while waiting; every one of the 8 threads could be taken.
    organisations = [make_organisation(f"limited-{n}") for n in range(10)]
    for i in range(50):
        make_subscription(organisations[i % 10], url=f"{base}/limited/{i}", max_per_second=1)
    other_org = make_organisation("other")
    make_subscription(other_org, url=f"{base}/other")
    celery_process(*WORKER_ARGS)
    _latencies(other_org, receiver, "/other", rate=4, seconds=1)  # the worker warms up
    calm = _latencies(other_org, receiver, "/other", rate=4, seconds=5)

    for organisation in organisations:
        _record(organisation, 10)
    # Measured once every limited endpoint has had its first request: from then on each of them waits for its
    # limit with 9 deliveries still to go (about 9 s), which is what must hold no thread. The first round (50
    # POSTs and 500 deliveries claimed, queued ahead of the other endpoint's tasks) is work, not waiting: on a
    # loaded machine it delayed the other endpoint's first events by up to 1.3 s, with or without waiting
    # holding a thread.
    wait_until(lambda: len({r.path for r in list(receiver.received) if r.path.startswith("/limited/")}) == 50,
               timeout=60, message="a first request to each limited endpoint")
    beside = _latencies(other_org, receiver, "/other", rate=4, seconds=5)
    limited_meanwhile = sum(r.path.startswith("/limited/") for r in list(receiver.received))
    limited = _arrived(receiver, "/limited/", 500)

    assert len({r.headers["webhook-id"] + r.path for r in limited}) == 500
    assert limited_meanwhile < 500  # the other endpoint was measured while the backlog was sending
    for quantile in (50, 90):
        assert percentile(beside, quantile) <= _twice_calm(percentile(calm, quantile)), (
            f"p{quantile} {percentile(beside, quantile):.0f} ms beside 50 waiting endpoints, "
            f"{percentile(calm, quantile):.0f} ms calm")


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
