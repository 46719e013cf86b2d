"""Retention beside sending: pruning the old part of the log while the workers send at full speed.

Each cycle generates `rows` finished deliveries older than the retention period
(bench.log_scale's generator, 31 days back and older), measures the sending
rate alone (bench.phases.throughput, one endpoint), then again while
`manage.py prune_deliveries` runs in its own process (from its first deleted
batch on: the process's start is not pruning), and reads the tables' sizes
after the fill and after the prune. While the prune runs, a sampler
reads pg_stat_activity every 20 ms: the longest time any statement of the
database had been running while it waited for a lock (an upper bound of a
lock wait: the wait began after the statement did).
"""

import subprocess
import sys
import threading
import time

from bench import phases, stack
from bench.log_scale import load_rows

TABLES = ("delivery_delivery", "delivery_attempt", "delivery_event", "delivery_attempthour", "delivery_hoursummary")
# Ids of the generated rows start here (the log phase's start at 1): each cycle gets its own.
FIRST = 10**12


def table_sizes() -> dict:
    """Return {table: {"heap", "indexes", "toast", "total"}} in bytes."""
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                "SELECT pg_relation_size(c.oid), pg_indexes_size(c.oid), "
                "coalesce(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0), pg_total_relation_size(c.oid) "
                "FROM pg_class c WHERE c.relname = %s", [table])
            heap, indexes, toast, total = cursor.fetchone()
            sizes[table] = {"heap": heap, "indexes": indexes, "toast": toast, "total": total}
    return sizes


class LockSampler(threading.Thread):
    """Polls pg_stat_activity for statements waiting on a lock; keeps the longest such statement's age."""

    def __init__(self, database: str):
        super().__init__(daemon=True)
        self.database = database
        self.longest = 0.0
        self.samples = 0
        self.waiting_samples = 0
        self._done = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(stack.database_url(self.database), autocommit=True) as conn:
            while not self._done.is_set():
                (age, waiting), = conn.execute(
                    "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0), count(*) "
                    "FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                    [self.database]).fetchall()
                self.samples += 1
                self.waiting_samples += bool(waiting)
                self.longest = max(self.longest, float(age))
                time.sleep(0.02)

    def stop(self) -> dict:
        self._done.set()
        self.join(5)
        return {"longest_lock_wait_s": self.longest, "lock_samples": self.samples,
                "samples_with_a_lock_wait": self.waiting_samples}


def _first_batch(subscription, rows: int, *, limit: float = 60.0) -> float:
    """Wait until the pruner has deleted its first batch of the endpoint's `rows` deliveries (its process has
    started: Django's start is not pruning); return how long that took."""
    from delivery.models import Delivery

    started = time.monotonic()
    while (Delivery.objects.filter(subscription=subscription).count() >= rows
           and time.monotonic() - started < limit):
        time.sleep(0.1)
    return time.monotonic() - started


def retention(rx, *, rows: int, events: int, cycles: int, env: dict, database: str, kw: dict) -> dict:
    """Run `cycles` fill-and-prune cycles; return the rates, the longest lock wait, the sizes and prune times."""
    from datetime import timedelta

    from django.utils import timezone

    org = phases.organisation_make("retention")
    old = phases.endpoint_make(rx, org, "/retention-old", ["lot.created", "order.created"])
    out = {"rows": rows, "events": events, "cycles": []}
    for cycle in range(cycles):
        t0 = time.monotonic()
        base = (timezone.now() - timedelta(days=31)).replace(microsecond=0)
        load_rows(old, rows=rows, base=base, first=FIRST + cycle * rows)
        figures = {"fill_seconds": time.monotonic() - t0, "after_fill": table_sizes()}
        figures["alone"] = phases.throughput(rx, events=events, endpoints=1, **kw)
        sampler = LockSampler(database)
        sampler.start()
        started = time.monotonic()
        pruner = subprocess.Popen([sys.executable, "manage.py", "prune_deliveries", "--days", "30"], env=env,
                                  cwd=stack.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        figures["pruner_start_seconds"] = _first_batch(old, rows)
        figures["pruning"] = phases.throughput(rx, events=events, endpoints=1, **kw)
        figures["sending_seconds_while_pruning"] = time.monotonic() - started
        output, _ = pruner.communicate()
        figures["prune_seconds"] = time.monotonic() - started
        figures["prune_output"] = output.strip().splitlines()[-1:] or [""]
        figures["prune_exit"] = pruner.returncode
        figures.update(sampler.stop())
        figures["after_prune"] = table_sizes()
        alone, pruning = figures["alone"]["per_second"], figures["pruning"]["per_second"]
        figures["slowdown_percent"] = 100 * (1 - pruning / alone) if alone else None
        print(f"retention cycle {cycle + 1}: {alone:.1f}/s alone, {pruning:.1f}/s while pruning, "
              f"longest lock wait {figures['longest_lock_wait_s']:.3f} s, prune {figures['prune_seconds']:.0f} s "
              f"({figures['prune_output'][0]})", flush=True)
        out["cycles"].append(figures)
    return out


def lost(results: dict) -> list[str]:
    """What did not arrive verified in the retention phase's sending."""
    problems = []
    for i, cycle in enumerate(results.get("cycles", [])):
        for key in ("alone", "pruning"):
            if cycle[key]["lost"] or cycle[key]["unverified"]:
                problems.append(f"retention cycle {i + 1} {key}: {len(cycle[key]['lost'])} lost, "
                                f"{cycle[key]['unverified']} unverified")
    return problems
