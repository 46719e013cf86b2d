"""Scale-out: two workers started as two machines would be drain one backlog together (issue 11, item 10).

Two `celery worker` processes with their own node names (`-n w1@%h`, `-n w2@%h`),
the same database and broker, and one beat (the sweeper), send a backlog of
2,000 events over 5 endpoints (of 5 organisations, so that the organisation cap
leaves room for both workers) to the real HTTPS receiver. The receiver records
every arrival and which webhook-ids have a request open: every event must
arrive, no webhook-id may arrive while another request with the same id is
open, and nothing arrives twice. After kill -9 of one worker midway, the other
finishes everything; the only duplicates allowed are deliveries whose request
the killed worker had in flight (it never recorded them), at most 2 batches.
"""

import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import transaction

from conftest import WORKER_ARGS, make_organisation, make_subscription, wait_until, wait_until_finished
from delivery import sender, slots
from delivery.models import Attempt, Delivery
from delivery.tests.receiver import answer
from subscriptions.activity import record_activity

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

EVENTS = 2000
ENDPOINTS = 5
# A short request timeout, so that the leases of a killed worker (WEBHOOKS_TIMEOUT + slots.LEASE_EXTRA) run out fast.
ENV = {"WEBHOOKS_TIMEOUT": "3", "WEBHOOKS_RETRY_SCHEDULE": "1,1,2,2,3"}
ANSWER_DELAY = 0.02  # seconds per answer: a full batch is slow enough to call helper senders


class Arrivals:
    """The receiver's record: how often each webhook-id arrived, and any that arrived while one was open."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count: Counter = Counter()
        self.open: Counter = Counter()
        self.overlaps: list[str] = []
        self.first_at: dict[str, float] = {}

    def __call__(self, handler):
        webhook_id = handler.headers["webhook-id"]
        with self.lock:
            if self.open[webhook_id]:
                self.overlaps.append(webhook_id)
            self.open[webhook_id] += 1
            self.count[webhook_id] += 1
            self.first_at.setdefault(webhook_id, time.monotonic())
        try:
            time.sleep(ANSWER_DELAY)
            answer(handler, 200)
        except OSError:
            pass  # the worker was killed mid-request: the event arrived all the same
        finally:
            with self.lock:
                self.open[webhook_id] -= 1

    def distinct(self) -> int:
        with self.lock:
            return len(self.count)

    def snapshot(self) -> tuple[Counter, list[str], dict[str, float]]:
        with self.lock:
            return Counter(self.count), list(self.overlaps), dict(self.first_at)


@pytest.fixture
def machines(require_services, db, receiver, celery_process, tmp_path):
    """Start w1, w2 and beat; return (arrivals, {node: process}, a function recording the backlog)."""
    arrivals = Arrivals()
    receiver.default = arrivals
    organisations = [make_organisation(f"farm-{i}") for i in range(ENDPOINTS)]
    for i, organisation in enumerate(organisations):
        make_subscription(organisation, url=f"{receiver.url}/{i}", activity_types=["lot.created"])
    workers = {node: celery_process(*WORKER_ARGS, "-n", f"{node}@%h", env=ENV) for node in ("w1", "w2")}
    celery_process("beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule"), env=ENV)
    for node, process in workers.items():
        wait_until(lambda p=process: "ready" in _log(p), timeout=60, message=f"worker {node} ready")

    def backlog() -> set[str]:
        # One backlog, committed at once: 5 wake-ups on commit, both workers idle and waiting for them.
        with transaction.atomic():
            events = [record_activity(organisation=organisations[i % ENDPOINTS], activity_type="lot.created",
                                      data={"n": i}) for i in range(EVENTS)]
        return {e.webhook_id for e in events}

    return arrivals, workers, backlog


def _log(process) -> str:
    return Path(process.log_path).read_text(errors="replace")


def _attempts_logged(process) -> int:
    return len(re.findall(r"Attempt \d+ of evt_", _log(process)))


def _all_recorded():
    wait_until(lambda: Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == EVENTS, timeout=120,
               message=f"{EVENTS} deliveries recorded as succeeded")
    wait_until_finished(Delivery.objects.all())  # so no duplicate can still be on its way


def test_two_workers_drain_one_backlog_with_every_event_once_and_none_in_flight_twice(machines):
    arrivals, workers, backlog = machines

    recorded = backlog()
    wait_until(lambda: arrivals.distinct() == EVENTS, timeout=300, message=f"{EVENTS} events at the receiver")
    _all_recorded()

    count, overlaps, _ = arrivals.snapshot()
    by_worker = {node: _attempts_logged(p) for node, p in workers.items()}
    print(f"\nscale-out: {EVENTS} events over 5 endpoints, attempts by worker {by_worker}, "
          f"duplicates {sum(count.values()) - len(count)}, in flight twice {len(overlaps)}")
    assert set(count) == recorded
    assert overlaps == [], "a webhook-id arrived while a request with the same id was still open"
    assert [i for i, n in count.items() if n > 1] == [], "duplicates with no worker killed"
    assert Attempt.objects.count() == EVENTS
    assert all(p.proc.poll() is None for p in workers.values())
    assert sum(by_worker.values()) == EVENTS
    # (How the work splits is the broker's doing: the embedded one may hand every endpoint's first message to
    # one worker's prefetch. What must hold whatever the split is above; the kill test proves the takeover.)


def test_after_kill_9_of_one_worker_midway_the_other_finishes_everything(machines):
    arrivals, workers, backlog = machines

    recorded = backlog()
    wait_until(lambda: arrivals.distinct() >= EVENTS // 3, timeout=300, message="a third of the backlog sent")
    by_worker = {node: _attempts_logged(p) for node, p in workers.items()}
    victim = max(by_worker, key=by_worker.get)  # the busier one, with requests in flight
    survivor = workers["w2" if victim == "w1" else "w1"]
    workers[victim].kill(signal.SIGKILL)
    killed_at = time.monotonic()
    assert workers[victim].proc.returncode == -signal.SIGKILL
    sent_at_kill = arrivals.distinct()
    assert sent_at_kill < EVENTS, "the backlog was done before the kill: nothing was proved"

    wait_until(lambda: arrivals.distinct() == EVENTS, timeout=300, message=f"{EVENTS} events at the receiver")
    _all_recorded()

    count, overlaps, first_at = arrivals.snapshot()
    duplicated = {i: n for i, n in count.items() if n > 1}
    print(f"\nscale-out, kill -9 of {victim} at {sent_at_kill} of {EVENTS}: duplicates {len(duplicated)}, "
          f"in flight twice {len(overlaps)}, the workers' lease {float(ENV['WEBHOOKS_TIMEOUT']) + slots.LEASE_EXTRA} s")
    assert set(count) == recorded
    assert survivor.proc.poll() is None
    assert overlaps == [], "a webhook-id arrived while a request with the same id was still open"
    assert len(duplicated) <= 2 * sender.BATCH_MAX, duplicated
    recorded_attempts = Counter(
        Attempt.objects.filter(delivery__event__id__in=[_event_id(i) for i in duplicated])
        .values_list("delivery__event_id", flat=True))
    for webhook_id, arrived in duplicated.items():
        # In flight in the killed worker: it arrived before the kill, and its attempt was never recorded.
        assert first_at[webhook_id] <= killed_at, webhook_id
        assert recorded_attempts[_event_id(webhook_id)] == arrived - 1, webhook_id


def _event_id(webhook_id: str):
    import uuid

    return uuid.UUID(webhook_id.removeprefix("evt_"))
