"""The fault suite: every committed event reaches the receiver through crashes and outages.

Real PostgreSQL, a Redis this module starts on a spare port, real worker and
beat processes, the real HTTPS receiver. Events are recorded by a separate
process (`manage.py emit_activity`, the domain-code path) so that only the
delivery side suffers each fault:
- kill -9 of a worker in the middle of a batch, then a new worker;
- Redis restarted empty while deliveries are queued;
- the receiver answering 503 for a while;
- PostgreSQL unreachable from the worker for a few seconds (a TCP proxy is cut).
For each, one line: events recorded, received, lost (must be 0), duplicated.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
from django.db import connection

from conftest import ROOT, WORKER_ARGS, database_url, make_subscription, wait_until_finished
from delivery.models import Delivery
from delivery.tests.receiver import answer

# PostgreSQL and Redis faults: run on the services store (deselected, never skipped, on the embedded one).
pytestmark = [pytest.mark.faults, pytest.mark.services_only, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Short schedules so that each fault plays out in seconds.
# (A killed worker's claims run out after WEBHOOKS_TIMEOUT + delivery.slots.LEASE_EXTRA.)
FAULT_ENV = {
    "WEBHOOKS_RETRY_SCHEDULE": "1,1,2,2,3",
    "WEBHOOKS_TIMEOUT": "3",
}
SETTLE_TIMEOUT = 120  # seconds to wait for every event to arrive before counting the lost


def emit(redis_url: str, count: int, *, lot_id: str) -> list[str]:
    """Record `count` activities in another process, publishing to `redis_url`; return their webhook-ids."""
    env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": redis_url}
    env.pop("TEST_DATABASE_NAME", None)
    out = subprocess.run(
        [sys.executable, "manage.py", "emit_activity", "acme", "lot.created", "--data", f'{{"lot_id": "{lot_id}"}}',
         "--count", str(count)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout
    return [line for line in out.split() if line.startswith("evt_")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throw-away redis-server on a spare port, without persistence: a restart starts it empty."""

    def __init__(self, workdir):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.fail("redis-server is not installed; the fault suite starts its own Redis")
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"redis-server did not start on port {self.port}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart_empty(self):
        self.stop()
        self.start()


class TcpProxy:
    """A TCP proxy thread in front of PostgreSQL that can be cut: open links dropped, new ones refused."""

    def __init__(self, target=("127.0.0.1", 5432)):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.passing = True
        self.stopped = False
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.passing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *socks):
        with self.lock:
            for s in socks:
                self.sockets.discard(s)
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self):
        self.passing = False
        with self.lock:
            open_now = list(self.sockets)
        self._drop(*open_now)

    def restore(self):
        self.passing = True

    def close(self):
        self.stopped = True
        self.cut()
        self.listener.close()


@dataclass
class Tally:
    """The receiver's side of the count: which webhook-ids it accepted (answered 2xx), how often."""

    delay: float = 0.05
    fail_until: float = 0.0  # time.monotonic() before which every request gets a 503
    accepted: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, handler):
        if time.monotonic() < self.fail_until:
            answer(handler, 503, b"maintenance", {"Retry-After": "1"})
            return
        time.sleep(self.delay)
        with self.lock:
            self.accepted[handler.headers["webhook-id"]] += 1
        try:
            answer(handler, 200)
        except OSError:
            pass  # the worker was killed mid-request: the receiver still got the event

    def count(self) -> int:
        with self.lock:
            return sum(self.accepted.values())

    def ids(self) -> set[str]:
        with self.lock:
            return set(self.accepted)


@dataclass
class Stack:
    redis: RedisServer
    tally: Tally
    start_process: object
    tmp_path: object
    show: object = print
    workers: list = field(default_factory=list)

    def env(self, **extra):
        return {**FAULT_ENV, "CELERY_BROKER_URL": self.redis.url, **extra}

    def start_worker(self, **extra):
        worker = self.start_process(*WORKER_ARGS, env=self.env(**extra))
        self.workers.append(worker)
        return worker

    def start_beat(self, **extra):
        return self.start_process("beat", "--schedule", str(self.tmp_path / f"beat-{len(self.workers)}"),
                                  env=self.env(**extra))

    def emit(self, count: int) -> list[str]:
        """Record `count` activities in a separate process; return their webhook-ids (all committed)."""
        return emit(self.redis.url, count, lot_id="F-1")

    def wait_for(self, n: int, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while self.tally.count() < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def settle(self, fault: str, recorded: list[str]) -> dict:
        """Wait until every recorded event arrived (or time ran out); print and return the counts."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not set(recorded) <= self.tally.ids() and time.monotonic() < deadline:
            time.sleep(0.2)
        # Once every delivery of these events is finished, no request of theirs (a retry, a re-send after a
        # lost record) can still be on its way: the duplicates are all counted.
        events = [uuid.UUID(webhook_id.removeprefix("evt_")) for webhook_id in recorded]
        wait_until_finished(Delivery.objects.filter(event_id__in=events),
                            timeout=max(deadline - time.monotonic(), 1.0))
        with self.tally.lock:
            accepted = Counter({k: v for k, v in self.tally.accepted.items() if k in set(recorded)})
        counts = {
            "recorded": len(recorded),
            "received": len(accepted),
            "lost": len(set(recorded) - set(accepted)),
            "duplicated": sum(accepted.values()) - len(accepted),
        }
        line = (f"fault {fault:<34} recorded {counts['recorded']:>4}  received {counts['received']:>4}  "
                f"lost {counts['lost']}  duplicated {counts['duplicated']}")
        self.show(line)
        return counts


@pytest.fixture
def stack(require_services, org, receiver, celery_process, tmp_path, capsys):
    assert connection.vendor == "postgresql", "the fault suite runs on the services store (TEST_STORES=services)"
    redis = RedisServer(tmp_path).start()
    tally = Tally()
    receiver.default = tally
    make_subscription(org, url=receiver.url, activity_types=["lot.created"])

    def show(line):
        with capsys.disabled():  # visible in `make test` and .ci/run, not only with -s
            print("\n" + line)

    s = Stack(redis=redis, tally=tally, start_process=celery_process, tmp_path=tmp_path, show=show)
    yield s
    for process in s.workers:
        process.stop()
    redis.stop()


def test_kill_9_a_worker_mid_batch_then_start_another(stack):
    stack.tally.delay = 0.1
    recorded = stack.emit(120)  # queued before any worker runs, so the kill lands mid-batch
    first = stack.start_worker()
    stack.start_beat()
    stack.wait_for(20)

    first.kill(signal.SIGKILL)  # requests in flight, messages reserved and unacknowledged
    assert first.proc.returncode == -signal.SIGKILL
    stack.start_worker()

    counts = stack.settle("kill -9 worker mid-batch", recorded)
    assert counts["lost"] == 0


def test_redis_restarted_empty_while_deliveries_are_queued(stack):
    stack.tally.delay = 0.1
    recorded = stack.emit(120)
    stack.start_worker()
    stack.start_beat()
    stack.wait_for(10)

    stack.redis.restart_empty()  # the queued messages are gone; worker and beat lose their connections

    counts = stack.settle("Redis restarted empty", recorded)
    assert counts["lost"] == 0


def test_receiver_answers_503_for_a_while(stack):
    stack.tally.fail_until = time.monotonic() + 1e9  # until the events are in
    stack.start_worker()
    stack.start_beat()
    recorded = stack.emit(60)
    # 503 for 8 s more: longer than a delivery's whole retry schedule would allow
    # if every attempt were spent (1+1+2+2+3 s); the breaker spares attempts.
    stack.tally.fail_until = time.monotonic() + 8

    counts = stack.settle("receiver 503 for 8 s", recorded)
    assert counts["lost"] == 0


def test_postgresql_unreachable_for_a_few_seconds(stack):
    proxy = TcpProxy()
    try:
        proxied = database_url().replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        assert proxied != database_url()
        stack.tally.delay = 0.1
        recorded = stack.emit(100)
        stack.start_worker(DATABASE_URL=proxied)
        stack.start_beat(DATABASE_URL=proxied)
        stack.wait_for(10)

        proxy.cut()  # the worker's connections drop and new ones are refused
        time.sleep(4)
        proxy.restore()

        counts = stack.settle("PostgreSQL unreachable for 4 s", recorded)
    finally:
        proxy.close()
    assert counts["lost"] == 0
