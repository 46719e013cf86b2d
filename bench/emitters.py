"""Emit load from several processes, as several app processes of the domain would.

One caller records one activity at a time, so one process cannot show what
the sender does: it is the limit itself (about 2 ms of CPU an event). Each
emitter process sets up Django with the bench's settings, waits for a common
start time, and records its share, each in its own transaction.
"""

import multiprocessing
import os
import time


def _emit_share(env: dict, org_id: str, types: list[str], start: int, count: int, start_at: float, out) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from bench.phases import emit
    from organisations.models import Organisation

    org = Organisation.objects.get(id=org_id)
    while time.time() < start_at:
        time.sleep(0.001)
    first, cpu = time.time(), time.process_time()
    ids = [emit(org, types[(start + i) % len(types)])[0] for i in range(count)]
    out.put((first, time.time(), ids, time.process_time() - cpu))


def emit_parallel(*, env: dict, org, types: list[str], events: int, processes: int) -> tuple:
    """Emit events over processes in parallel; return (first emit, last commit, webhook ids, emitters' CPU s)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 4.0  # every process has set up Django before the clock starts
    share = -(-events // processes)
    procs = []
    for p in range(processes):
        count = min(share, events - p * share)
        procs.append(ctx.Process(target=_emit_share,
                                 args=(env, str(org.id), types, p * share, count, start_at, out)))
    for proc in procs:
        proc.start()
    results = [out.get(timeout=900) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    ids = set().union(*(set(r[2]) for r in results))
    return min(r[0] for r in results), max(r[1] for r in results), ids, sum(r[3] for r in results)
