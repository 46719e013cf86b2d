"""A hanging endpoint does not slow a healthy one of the same organisation (real worker, real receivers)."""

import statistics
from datetime import datetime

import pytest

from conftest import WORKER_ARGS, make_subscription
from delivery import slots
from delivery.tests.receiver import Receiver, hang
from subscriptions.activity import record_activity

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIMEOUT = 20  # seconds a hanging request ties a worker thread up
N = 24  # deliveries to the healthy endpoint, per phase


def _latencies(org, receiver, activity_type, n):
    """Record n activities; return each one's seconds from recording to arrival at the receiver."""
    before = len(receiver.received)
    created = {}
    for i in range(n):
        event = record_activity(organisation=org, activity_type=activity_type, data={"n": i})
        created[event.webhook_id] = event.created_at
    arrived = receiver.wait_for(before + n, timeout=90)[before:]
    return sorted(
        (datetime.fromtimestamp(r.at, tz=created[r.headers["webhook-id"]].tzinfo) - created[r.headers["webhook-id"]])
        .total_seconds()
        for r in arrived
    )


def _p(values, q):
    return statistics.quantiles(values, n=10, method="inclusive")[q // 10 - 1] if q < 100 else max(values)


def test_a_hanging_endpoint_does_not_slow_a_healthy_one(require_services, org, receiver, celery_process, tmp_path):
    env = {"WEBHOOKS_TIMEOUT": str(TIMEOUT)}
    worker = celery_process(*WORKER_ARGS, env=env)  # 8 threads
    celery_process("beat", "--schedule", str(tmp_path / "beat-schedule"), env=env)
    make_subscription(org, url=receiver.url, activity_types=["lot.created"])
    (tmp_path / "hanging").mkdir()
    with Receiver(tmp_path / "hanging", ca=receiver.ca) as hanging:
        hanging.default = hang(TIMEOUT * 3)  # bad input: never answers in time
        make_subscription(org, url=hanging.url, activity_types=["harvest.recorded"])

        _latencies(org, receiver, "lot.created", 8)  # warm-up: connections, TLS sessions
        baseline = _latencies(org, receiver, "lot.created", N)

        for i in range(4 * 8):  # enough to tie up every worker thread four times over
            record_activity(organisation=org, activity_type="harvest.recorded", data={"n": i})
        hanging.wait_for(1, timeout=60)
        beside_hang = _latencies(org, receiver, "lot.created", N)
        in_flight_at_hanging = len(hanging.received)

    print(f"\nhealthy endpoint, seconds from record to arrival (worker {worker.proc.pid}, 8 threads):")
    for name, values in (("alone", baseline), ("beside a hanging endpoint", beside_hang)):
        print(f"  {name:<27} p50 {_p(values, 50):.2f}  p90 {_p(values, 90):.2f}  max {max(values):.2f}")
    print(f"  requests the hanging endpoint received: {in_flight_at_hanging} (32 recorded)")

    # The cap held: no more requests reached the hanging endpoint than its senders (none has ended yet);
    # a failing backlog gets no helper sender, so one thread hangs, not ENDPOINT_SENDERS.
    assert 1 <= in_flight_at_hanging <= slots.ENDPOINT_SENDERS
    # Without isolation every thread would hang for TIMEOUT seconds and the healthy
    # deliveries would wait at least that long; with it, none waits for a hanging request.
    assert max(beside_hang) < TIMEOUT
    # And the healthy endpoint's latency stays of the same order as on its own.
    assert _p(beside_hang, 50) <= 3 * _p(baseline, 50) + 1.0
