"""A worker started by the README's command survives Redis restarted empty under load, and keeps consuming.

Celery 5.7.0's worker exited on it ("Unrecoverable error: AttributeError("'NoneType' object has no
attribute 'hostname'")") when it held unacknowledged messages: see webhooks_project/celery.py.
This test starts its own Redis on a spare port, a real worker and beat on it, records a backlog
through `manage.py emit_activity` (the domain-code path, in another process), restarts Redis
empty while the backlog is in flight, then records more.
"""

import re
import time
import uuid

import pytest

from conftest import WORKER_ARGS, make_subscription, wait_until_finished
from delivery.models import Delivery, EndpointWake
from delivery.tests.test_faults import FAULT_ENV, RedisServer, Tally, emit

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SETTLE_TIMEOUT = 120


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_worker_survives_redis_restarted_empty_with_a_backlog_in_flight(org, receiver, celery_process, tmp_path,
                                                                       capsys):
    redis = RedisServer(tmp_path).start()
    try:
        tally = Tally(delay=0.1)  # slow enough that the backlog is still in flight at the restart
        receiver.default = tally
        make_subscription(org, url=receiver.url, activity_types=["lot.created"])
        env = {**FAULT_ENV, "CELERY_BROKER_URL": redis.url}

        recorded = emit(redis.url, 150, lot_id="R-1")  # queued before the worker starts: it reserves a full prefetch
        worker = celery_process(*WORKER_ARGS, env=env)
        celery_process("beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule"), env=env)
        assert wait_for(lambda: tally.count() >= 10, 60), "the worker delivered nothing before the restart"

        redis.restart_empty()  # the queue and the reserved messages are gone; the connections drop
        assert wait_for(lambda: "Connection to broker lost" in worker.log_path.read_text(), 30), \
            "the restart did not reach the worker"
        log = worker.log_path.read_text()
        assert worker.proc.poll() is None, f"the worker exited after the restart:\n{log[-3000:]}"

        after = emit(redis.url, 20, lot_id="R-1")  # new messages: the worker must consume them
        recorded += after
        wait_for(lambda: set(recorded) <= tally.ids(), SETTLE_TIMEOUT)
        # A sender still running from before the restart may have found those 20 by its own last look; once
        # the endpoint is idle (no wake row), one more event needs a new message through the new connection.
        wait_for(lambda: not EndpointWake.objects.exists(), 30)
        last = emit(redis.url, 1, lot_id="R-1")
        recorded += last
        wait_for(lambda: set(recorded) <= tally.ids(), 60)
        # Every delivery of these events finished: no retry or re-send can still be on its way.
        events = [uuid.UUID(webhook_id.removeprefix("evt_")) for webhook_id in recorded]
        wait_until_finished(Delivery.objects.filter(event_id__in=events))
        log = worker.log_path.read_text()
        reconnected = log.rfind("Connected to redis")
        consumed_after = len(re.findall(r"Task [\w.]+\[[^]]+\] received", log[reconnected:]))
        with tally.lock:
            accepted = {k: v for k, v in tally.accepted.items() if k in set(recorded)}
        lost = len(set(recorded) - set(accepted))
        duplicated = sum(accepted.values()) - len(accepted)
        with capsys.disabled():
            print(f"\nfault Redis restarted empty (own worker) recorded {len(recorded):>4}  received {len(accepted):>4}"
                  f"  lost {lost}  duplicated {duplicated}  messages consumed after reconnect {consumed_after}")

        assert "Unrecoverable error" not in log, f"the worker gave up:\n{log[-3000:]}"
        assert worker.proc.poll() is None, "the worker exited"
        assert reconnected > log.find("Connection to broker lost"), "the worker never reconnected"
        assert consumed_after > 0, "the worker reconnected but consumed no message"
        assert lost == 0
    finally:
        redis.stop()
