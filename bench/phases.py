"""The measurements, each a function of the running stack and the receiver; Django is set up.

Every phase emits through the public path domain code uses (record_activity
in a transaction), collects what the receiver logged, and returns its figures
plus the events that did not arrive verified (`lost`, `unverified`).
"""

import os
import statistics
import time
from itertools import count

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from bench.arrivals import busiest_second, percentile
from bench.receiver import FastReceiver
from delivery import states
from organisations.models import Organisation
from subscriptions.activity import record_activity
from subscriptions.activity_types import ACTIVITY_TYPES
from subscriptions.models import Subscription
from subscriptions.services import subscription_create

TYPES = list(ACTIVITY_TYPES)
_serial = count()


def organisation_make(prefix: str) -> Organisation:
    n = next(_serial)
    return Organisation.objects.create(slug=f"{prefix}-{n}", name=f"Bench {prefix} {n}")


def endpoint_make(rx: FastReceiver, org: Organisation, path: str, activity_types, **controls) -> Subscription:
    """Create a subscription to rx at path (with what its receiver asks for, `controls`) and tell rx its secret."""
    subscription, secret = subscription_create(organisation=org, url=rx.url(path), activity_types=activity_types,
                                               **controls)
    rx.secrets({path: secret})
    return subscription


def emit(org: Organisation, activity_type: str) -> tuple[str, float]:
    """Record one activity in its own transaction; return (webhook id, time of commit)."""
    committed = []
    with transaction.atomic():
        # Registered first, so it runs first: the commit time, before the enqueue.
        transaction.on_commit(lambda: committed.append(time.time()))
        event = record_activity(organisation=org, activity_type=activity_type,
                                data=ACTIVITY_TYPES[activity_type].sample)
    return event.webhook_id, committed[0]


def _outcome(rx: FastReceiver, want: set[str], arrived: dict) -> dict:
    return {"lost": sorted(want - arrived.keys()), "unverified": len(getattr(rx, "unverified", []))}


def cpu_seconds(pids: list[int]) -> float:
    """Return the CPU time (user + system) these processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """Return the CPU time all processes of the machine have used so far (idle and iowait excluded)."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def throughput(rx: FastReceiver, *, events: int, endpoints: int, timeout: float, env: dict, emitters: int,
               worker_pids: list[int]) -> dict:
    """Emit `events` from `emitters` processes, spread over `endpoints`; deliveries/s to the last arrival.

    Also the workers' CPU time per delivery: a figure that other load on the
    machine disturbs much less than a rate.
    """
    from bench.emitters import emit_parallel

    org = organisation_make(f"tp{endpoints}")
    prefix = f"/tp{endpoints}-{org.slug}/"
    types = TYPES[:endpoints]
    for i, code in enumerate(types):
        endpoint_make(rx, org, f"{prefix}{i}", [code])
    cpu_before, machine_before = cpu_seconds(worker_pids), machine_cpu_seconds()
    first, emitted, want, emit_cpu = emit_parallel(env=env, org=org, types=types, events=events, processes=emitters)
    arrived = rx.collect(want, timeout, prefix)
    cpu = cpu_seconds(worker_pids) - cpu_before
    machine = machine_cpu_seconds() - machine_before
    last = max((a.at for a in arrived.values()), default=emitted)
    return {"events": events, "endpoints": endpoints, "emitters": emitters,
            "machine_cpu_ms_per_delivery": machine * 1000 / max(len(arrived), 1),
            "per_second": len(arrived) / max(last - first, 1e-9),
            "emit_per_second": events / max(emitted - first, 1e-9), "seconds": last - first,
            "worker_cpu_ms_per_delivery": cpu * 1000 / max(len(arrived), 1),
            "emitter_cpu_ms_per_event": emit_cpu * 1000 / events, **_outcome(rx, want, arrived)}


def drain(rx: FastReceiver, *, events: int, timeout: float, env: dict, emitters: int, worker_pids: list[int]) -> dict:
    """Hold `events` for a paused endpoint, then Resume: deliveries/s from Resume to the last arrival.

    The sender alone, with no caller competing for the machine: what the
    workers do with a backlog (after an outage, or a pause).
    """
    org = organisation_make("drain")
    path = f"/drain-{org.slug}"
    subscription = endpoint_make(rx, org, path, ["lot.created"])
    want, start, arrived, cpu = _backlog_released(rx, org, subscription, path, events=events, timeout=timeout,
                                                  env=env, emitters=emitters, worker_pids=worker_pids)
    last = max((a.at for a in arrived.values()), default=start)
    return {"events": events, "per_second": len(arrived) / max(last - start, 1e-9), "seconds": last - start,
            "worker_cpu_ms_per_delivery": cpu * 1000 / max(len(arrived), 1), **_outcome(rx, want, arrived)}


def _backlog_released(rx: FastReceiver, org, subscription, path: str, *, events: int, timeout: float, env: dict,
                      emitters: int, worker_pids: list[int]):
    """Pause the endpoint, record `events` for it, Resume and wait for them; return (want, Resume's time,
    the arrivals, the workers' CPU seconds from Resume to the last arrival)."""
    from bench.emitters import emit_parallel
    from subscriptions.services import subscription_pause, subscription_resume

    subscription_pause(subscription=subscription)
    _, _, want, _ = emit_parallel(env=env, org=org, types=["lot.created"], events=events, processes=emitters)
    cpu_before = cpu_seconds(worker_pids)
    start = time.time()
    subscription_resume(subscription=subscription)
    arrived = rx.collect(want, timeout, path)
    return want, start, arrived, cpu_seconds(worker_pids) - cpu_before


def controls(rx: FastReceiver, *, events: int, timeout: float, env: dict, emitters: int,
             worker_pids: list[int]) -> dict:
    """A backlog of `events` drained after Resume by an ordered endpoint, and by one limited to 100 a second.

    Ordered: one request in flight, so its rate is bounded by one round trip (claim,
    POST, record) per event. Limited: requests per second from its first arrival to
    its last, to set beside its limit, and the most that arrived in any one second.
    """
    out = {}
    for name, asked in (("ordered", {"ordered": True}), ("limited_100", {"max_per_second": 100})):
        org = organisation_make(f"ctl-{name.replace('_', '-')}")
        path = f"/ctl-{name}-{org.slug}"
        subscription = endpoint_make(rx, org, path, ["lot.created"], **asked)
        want, start, arrived, cpu = _backlog_released(rx, org, subscription, path, events=events, timeout=timeout,
                                                      env=env, emitters=emitters, worker_pids=worker_pids)
        times = sorted(a.at for a in arrived.values())
        order = [a.msg_id for a in sorted(arrived.values(), key=lambda a: a.at)]
        out[name] = {"events": events, "seconds": (times[-1] - start) if times else 0.0,
                     "per_second": (len(times) - 1) / max(times[-1] - times[0], 1e-9) if len(times) > 1 else 0.0,
                     "worker_cpu_ms_per_delivery": cpu * 1000 / max(len(arrived), 1),
                     **_outcome(rx, want, arrived)}
        if name == "ordered":
            out[name]["in_recording_order"] = order == sorted(order, key=_recorded_at(subscription))
        else:
            out[name]["busiest_second"] = busiest_second(times)
    return out



def _recorded_at(subscription: Subscription):
    """Return a sort key: a webhook id's place in the order its event was recorded."""
    from delivery.models import Delivery

    recorded = {f"evt_{event_id.hex}": (at, delivery_id) for event_id, at, delivery_id in
                Delivery.objects.filter(subscription=subscription).values_list("event_id", "created_at", "id")}
    return recorded.__getitem__


def _paced(org: Organisation, activity_type: str, *, events: int, rate: float) -> dict[str, float]:
    committed = {}
    start = time.monotonic()
    for i in range(events):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        msg_id, at = emit(org, activity_type)
        committed[msg_id] = at
    return committed


def _latencies(committed: dict[str, float], arrived: dict) -> dict:
    ms = [(arrived[m].at - t) * 1000 for m, t in committed.items() if m in arrived]
    if not ms:
        return {"p50": None, "p95": None, "p99": None}
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99), "max": max(ms)}


def latency(rx: FastReceiver, *, events: int, rate: float, timeout: float, worker_pids: list[int] = ()) -> dict:
    """Emit at a steady rate to one endpoint; commit-to-arrival percentiles in ms, and the workers' CPU per delivery.

    A steady trickle is what most organisations send: each event finds the
    sender idle, so this is the cost of a delivery that arrives alone.
    """
    org = organisation_make("lat")
    path = f"/lat-{org.slug}"
    endpoint_make(rx, org, path, ["lot.created"])
    cpu_before = cpu_seconds(list(worker_pids))
    committed = _paced(org, "lot.created", events=events, rate=rate)
    arrived = rx.collect(set(committed), timeout, path)
    cpu = cpu_seconds(list(worker_pids)) - cpu_before
    return {"events": events, "rate": rate, "worker_cpu_ms_per_delivery": cpu * 1000 / max(len(arrived), 1),
            **_latencies(committed, arrived), **_outcome(rx, set(committed), arrived)}


def isolation(rx: FastReceiver, *, events: int, rate: float, timeout: float, hang: bool) -> dict:
    """Emit at a steady rate to two endpoints of one organisation, the second hanging if `hang`.

    Returns the healthy endpoint's percentiles; the other endpoint is paused
    and released afterwards, so it holds no worker in later phases.
    """
    org = organisation_make("iso-hang" if hang else "iso-calm")
    ok_path, other_path = f"/iso-{org.slug}/ok", f"/iso-{org.slug}/other"
    endpoint_make(rx, org, ok_path, ["lot.created"])
    other = endpoint_make(rx, org, other_path, ["lot.created"])
    if hang:
        rx.hang(other_path)
    committed = _paced(org, "lot.created", events=events, rate=rate)
    arrived = rx.collect(set(committed), timeout, ok_path)
    Subscription.objects.filter(id=other.id).update(state=Subscription.State.PAUSED)
    states.deliveries_cancel(subscription_id=other.id, reason="Cancelled by the bench.")
    rx.release(other_path)
    return {"events": events, "rate": rate, "hang": hang, **_latencies(committed, arrived),
            **_outcome(rx, set(committed), arrived)}


def fair_share(rx: FastReceiver, *, events: int, rate: float, timeout: float, hostile: int) -> dict:
    """Emit at a steady rate to one endpoint of an organisation while another's `hostile` endpoints hang.

    Returns the healthy organisation's percentiles. The hanging endpoints each
    get every event of their organisation (emitted in step), so they hold as
    many senders as their caps allow for the whole phase; they are paused and
    released afterwards.
    """
    calm_org, bad_org = organisation_make("fair-ok"), organisation_make("fair-bad")
    ok_path = f"/fair-{calm_org.slug}/ok"
    endpoint_make(rx, calm_org, ok_path, ["lot.created"])
    bad = []
    for n in range(hostile):
        path = f"/fair-{bad_org.slug}/hang-{n}"
        bad.append(endpoint_make(rx, bad_org, path, ["lot.created"]))
        rx.hang(path)
    for _ in range(hostile * 4):  # a backlog first, so every slot of the bad organisation is taken
        emit(bad_org, "lot.created")
    committed = {}
    interval = 1.0 / rate
    next_at = time.monotonic()
    for _ in range(events):
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
        emit(bad_org, "lot.created")
        msg_id, at = emit(calm_org, "lot.created")
        committed[msg_id] = at
    arrived = rx.collect(set(committed), timeout, ok_path)
    for subscription in bad:
        Subscription.objects.filter(id=subscription.id).update(state=Subscription.State.PAUSED)
        states.deliveries_cancel(subscription_id=subscription.id, reason="Cancelled by the bench.")
        rx.release(f"/fair-{bad_org.slug}/hang-{bad.index(subscription)}")
    return {"events": events, "rate": rate, "hostile": hostile, **_latencies(committed, arrived),
            **_outcome(rx, set(committed), arrived)}


def caller_cost(rx: FastReceiver, *, subscriptions: int, iterations: int) -> dict:
    """Time and queries that record_activity adds inside the caller's transaction, and the commit after it.

    Run before any worker starts: nothing competes, and the deliveries it
    writes are cancelled (and their messages purged) by the caller afterwards.
    """
    org = organisation_make(f"cost{subscriptions}")
    for i in range(subscriptions):
        endpoint_make(rx, org, f"/cost-{org.slug}/{i}", ["harvest.recorded"])
    data = ACTIVITY_TYPES["harvest.recorded"].sample
    queries = []
    for _ in range(5):  # warm-up, and the query count (apart from the timing: capturing costs time)
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            record_activity(organisation=org, activity_type="harvest.recorded", data=data)
        queries.append(len(captured.captured_queries))
    inside, commit = _timed(lambda: record_activity(organisation=org, activity_type="harvest.recorded", data=data),
                            iterations)
    for subscription in Subscription.objects.filter(organisation=org):
        states.deliveries_cancel(subscription_id=subscription.id, reason="Cancelled by the bench.")
    return {"subscriptions": subscriptions, "queries": max(queries), "inside_ms": statistics.median(inside),
            "commit_ms": statistics.median(commit), "iterations": iterations}


def _timed(record, iterations: int) -> tuple[list[float], list[float]]:
    """Return the ms spent in record() inside a transaction, and in the commit after it, per iteration."""
    inside, commit = [], []
    for _ in range(iterations):
        with transaction.atomic():
            t0 = time.perf_counter()
            record()
            t1 = time.perf_counter()
        t2 = time.perf_counter()
        inside.append((t1 - t0) * 1000)
        commit.append((t2 - t1) * 1000)
    return inside, commit
