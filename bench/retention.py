"""Retention beside sending: pruning the old part of the log while the workers
send at full speed.

The log is kept for 30 days, in steady operation: it first holds `rows`
finished deliveries over 30 days (bench.log_scale's generator, a day's worth a
day); each cycle is then one day: a day's worth arrives at the new end, the
sending rate is measured alone (bench.phases.throughput, one endpoint), then
again while `manage.py prune_deliveries` removes the day that has aged past
the period, in its own process, once in each of its stages (from its first
deleted delivery on: the process's start is not pruning; then its events; then
its VACUUM), and alone again once it is over. Each stage's figure is paired
with sending alone at the same moment of the same log: in the deleting stages
the pruner's process is stopped (SIGSTOP: it rests between two batches; a
batch under way ends on the server first) while the same sending is measured
again; the VACUUM runs in the server, where stopping the client stops nothing,
so its server process is stopped instead, caught in one of its cost-delay
sleeps (wait event VacuumDelay: it holds no lightweight lock there, only its
table locks, which no sender takes; the bench's PostgreSQL is on this
machine). A stage the prune ended in before its pair was measured is paired
with the sending alone right after the prune. The stage slowed the most is the
figure. (Paired, because "alone" measured apart from the prune, before and
after it, went 319-607/s from one day to the next on this machine, and
403-825/s in a later run: more than the 20 % the target allows.) The tables'
sizes are read after the fill and after the prune, each fill followed by a
CHECKPOINT so that its writes are not flushed during the measures. While the
prune runs, a sampler reads pg_stat_activity every 20 ms: the longest time any
statement of the database had been running while it waited for a lock (an
upper bound of a lock wait: the wait began after the statement did).
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

from bench import phases, stack
from bench.log_scale import delivery_id, load_rows

TABLES = ("delivery_delivery", "delivery_attempt", "delivery_event", "delivery_attempthour", "delivery_hoursummary")
# Ids of the generated rows start here (the log phase's start at 1): each day gets its own.
FIRST = 10**12
RETENTION_DAYS = 30  # the period the bench's log is kept for (prune_deliveries --days)
DAY = 86400.0
# Each generated day's first 10 minutes hold no row, and the day's prune cuts in their middle.
GAP = 600.0


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


def _vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(TABLES)}")


def _checkpoint() -> None:
    """Flush what the fill wrote now, not during the measures that follow (a checkpoint it would set off
    writes gigabytes in the background)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


@contextlib.contextmanager
def _stopped(pid: int):
    """Keep a process stopped (SIGSTOP) for the block. A bench ended by SIGTERM meanwhile (as by SIGINT) still
    lets it go on: a pruner or a VACUUM left stopped would hold its locks until someone sent it SIGCONT."""
    terminate = signal.signal(signal.SIGTERM, _exit_on_term)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
        signal.signal(signal.SIGTERM, terminate)


def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)


def _vacuum_paused(conn, database: str, pruner: subprocess.Popen, measure, *, tries: int = 400):
    """Return measure() run while the prune's VACUUM is stopped in a cost-delay sleep (None if the prune ended,
    or no VACUUM was caught sleeping in `tries` looks 5 ms apart). `conn`: an autocommit psycopg connection."""
    for _ in range(tries):
        if pruner.poll() is not None:
            return None
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                           "AND query LIKE 'VACUUM%%' AND wait_event = 'VacuumDelay'", [database]).fetchone()
        if row is not None:
            with _stopped(row[0]):
                # Stopped inside the sleep, not just after it (it would no longer report the wait).
                if conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'VacuumDelay'",
                                [row[0]]).fetchone():
                    return measure()
        time.sleep(0.005)
    return None


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


# The prune's stages in order, each after the first known by the first statement of it the pruner sends.
STAGES = ("deliveries", "events", "vacuum")
STAGE_STATEMENTS = (("vacuum", "VACUUM"), ("events", 'DELETE FROM "delivery_event"'))
# Pairs (sending while the prune runs, then with it stopped) measured in each stage: the stage's figure is the
# median of each side, so that one sample's noise (a pair went -25 % to +23 % on this machine) is not the figure.
ROUNDS = 3


def _stage_now(conn, database: str) -> int:
    """Return the index in STAGES of the furthest stage a statement of the database shows (pg_stat_activity
    keeps a connection's last statement while it rests: the caller keeps the furthest seen)."""
    for stage, statement in STAGE_STATEMENTS:
        if conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND query LIKE %s LIMIT 1",
                        [database, statement + "%"]).fetchone():
            return STAGES.index(stage)
    return 0


def _vacuum_running(conn, database: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                        "AND query LIKE 'VACUUM%%'", [database]).fetchone() is not None


def _paused(conn, database: str, pruner: subprocess.Popen, measure):
    """Return measure() run with the prune stopped where it is now: its VACUUM's server process if one runs,
    else the pruner's own process (None if the prune has ended, or its VACUUM was not caught sleeping)."""
    if not _vacuum_running(conn, database):
        if pruner.poll() is not None:
            return None
        with _stopped(pruner.pid):
            if not _vacuum_running(conn, database):  # it had not sent its VACUUM just before it stopped
                return measure()
    return _vacuum_paused(conn, database, pruner, measure)


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _stages_measured(database: str, pruner: subprocess.Popen, send, started: float) -> dict:
    """Measure sending in each stage of the prune as it reaches it, ROUNDS times alternately while it runs
    and with it stopped; return {stage: {"reached_seconds", "pruning": [figures], "paused": [figures]}}.
    A pair's "pruning" side counts for the stage it started in; a stage the prune leaves before ROUNDS pairs
    keeps the pairs it has. One connection reads pg_stat_activity for the whole prune."""
    import psycopg

    out, stage = {}, 0
    with psycopg.connect(stack.database_url(database), autocommit=True) as conn:
        while pruner.poll() is None or not out:  # one pair at least, even of a prune already over (the smoke's)
            stage = max(stage, _stage_now(conn, database))
            name = STAGES[stage]
            measured = out.setdefault(name, {"reached_seconds": time.monotonic() - started, "pruning": [],
                                             "paused": []})
            if len(measured["pruning"]) >= ROUNDS:
                time.sleep(0.05)  # this stage has its pairs: wait for the next (or the prune's end)
                continue
            measured["pruning"].append(send())
            paused = _paused(conn, database, pruner, send)
            if paused is not None:
                measured["paused"].append(paused)
    return out


def _first_batch(oldest: int, *, limit: float = 60.0) -> float:
    """Wait until the pruner has deleted generated row `oldest` (the first it deletes: its process has started,
    and Django's start is not pruning); return how long that took."""
    from delivery.models import Delivery

    started = time.monotonic()
    while Delivery.objects.filter(id=delivery_id(oldest)).exists() and time.monotonic() - started < limit:
        time.sleep(0.05)
    return time.monotonic() - started


def retention(rx, *, rows: int, events: int, cycles: int, env: dict, database: str, kw: dict,
              days: int = RETENTION_DAYS) -> dict:
    """Run `cycles` days of steady operation of a `rows`-delivery log; return the rates, the longest lock wait,
    the sizes and the prune times.

    The log first holds `rows` finished deliveries spread over `days` days (a day's worth, `rows // days`, a
    day), ending `cycles` days back. Each cycle is then one day of a log kept for `days` days: a day's worth
    arrives at the new end, the sending rate to another endpoint is measured alone, then again while
    `prune_deliveries` removes the day that has aged past the period (its cutoff a day later each cycle, as
    the clock would have moved), measured once in each of its stages, then alone again once it is over: the
    mean of the two alone is the baseline. Each generated day leaves its first GAP empty, and the cutoff falls
    in that gap: each prune removes exactly one day, however long the pruner's process takes to start.
    """
    from datetime import timedelta

    from django.utils import timezone

    from delivery.retention import deliveries_prune_preview

    org = phases.organisation_make("retention")
    old = phases.endpoint_make(rx, org, "/retention-old", ["lot.created", "order.created"])
    per_day = rows // days
    spacing = (DAY - GAP) / per_day
    end = (timezone.now() - timedelta(days=cycles)).replace(microsecond=0)

    def day_end(k: int):  # the newest moment of generated day k (0 the oldest of the first log)
        return end - timedelta(days=days - 1 - k)

    def fill(k: int, *, analyze: bool = True) -> None:
        load_rows(old, rows=per_day, base=day_end(k), first=FIRST + k * per_day, spacing=spacing, analyze=analyze)

    t0 = time.monotonic()
    for k in range(days):
        fill(k, analyze=False)
    # A log in operation has been vacuumed by autovacuum (off on this machine's server): not the first prune's work.
    _vacuum_analyze()
    _checkpoint()
    out = {"rows": per_day * days, "per_day": per_day, "days": days, "events": events,
           "first_fill_seconds": time.monotonic() - t0, "after_first_fill": table_sizes(), "cycles": []}

    def send() -> dict:  # the sending measured, alone or beside the prune: the same each time
        return phases.throughput(rx, events=events, endpoints=1, **kw)

    for cycle in range(cycles):
        t0 = time.monotonic()
        fill(days + cycle)
        _checkpoint()
        figures = {"fill_seconds": time.monotonic() - t0, "after_fill": table_sizes()}
        figures["alone"] = send()
        # Day `cycle` has aged past the period: the cutoff in the gap before day cycle + 1's first row.
        cutoff = day_end(cycle) + timedelta(seconds=GAP / 2)
        t0 = time.monotonic()
        preview = deliveries_prune_preview(days=(timezone.now() - cutoff).total_seconds() / DAY)
        figures["dry_run_seconds"] = time.monotonic() - t0
        figures["dry_run"] = {what: n for what, n in preview.items() if what != "cutoff"}
        sampler = LockSampler(database)
        sampler.start()
        started = time.monotonic()
        period = (timezone.now() - cutoff).total_seconds() / DAY
        pruner = subprocess.Popen([sys.executable, "manage.py", "prune_deliveries", "--days", f"{period:.9f}"],
                                  env=env, cwd=stack.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        figures["pruner_start_seconds"] = _first_batch(FIRST + cycle * per_day + per_day - 1)  # the day's oldest
        # Sending measured in each stage of the prune, as it reaches it, alternately while it runs and with the
        # pruner (deleting stages) or its VACUUM stopped at that moment: each stage against its own pairs.
        measured = _stages_measured(database, pruner, send, started)
        figures["sending_seconds_while_pruning"] = time.monotonic() - started
        output, _ = pruner.communicate()
        figures["prune_seconds"] = time.monotonic() - started
        figures["prune_output"] = output.strip().splitlines()[-1:] or [""]
        figures["prune_exit"] = pruner.returncode
        figures.update(sampler.stop())
        figures["after_prune"] = table_sizes()
        figures["alone_after"] = send()
        figures["stage_reached_seconds"] = {stage: m["reached_seconds"] for stage, m in measured.items()}
        figures["stages"] = {stage: m["pruning"] for stage, m in measured.items() if m["pruning"]}
        # A pair whose stopped side the prune ended before is completed with the sending after the prune.
        figures["paused"] = {stage: m["paused"] + [figures["alone_after"]] * (len(m["pruning"]) - len(m["paused"]))
                             for stage, m in measured.items() if m["pruning"]}
        figures["stage_pruning_per_second"] = {
            stage: _median([f["per_second"] for f in sends]) for stage, sends in figures["stages"].items()}
        figures["paired_alone"] = {
            stage: _median([f["per_second"] for f in sends]) for stage, sends in figures["paused"].items()}
        figures["stage_slowdown_percent"] = {
            stage: 100 * (1 - figures["stage_pruning_per_second"][stage] / alone) if alone else None
            for stage, alone in figures["paired_alone"].items()}
        figures["pair_slowdown_percent"] = {
            stage: [100 * (1 - p["per_second"] / a["per_second"]) if a["per_second"] else None
                    for p, a in zip(figures["stages"][stage], figures["paused"][stage], strict=True)]
            for stage in figures["stages"]}
        figures["slowest_stage"] = max(figures["stages"],
                                       key=lambda stage: figures["stage_slowdown_percent"][stage] or 0)
        figures["pruning_per_second"] = figures["stage_pruning_per_second"][figures["slowest_stage"]]
        figures["baseline_per_second"] = figures["paired_alone"][figures["slowest_stage"]]
        figures["slowdown_percent"] = figures["stage_slowdown_percent"][figures["slowest_stage"]]
        before, after = figures["alone"]["per_second"], figures["alone_after"]["per_second"]
        pairs = ", ".join(
            f"{stage} {figures['stage_pruning_per_second'][stage]:.1f} vs {figures['paired_alone'][stage]:.1f}/s "
            f"({figures['stage_slowdown_percent'][stage]:+.1f} %; pairs "
            f"{' '.join(f'{x:+.1f}' for x in figures['pair_slowdown_percent'][stage] if x is not None)})"
            for stage in figures["stages"])
        print(f"retention day {cycle + 1}: while pruning vs alone at the same moment: {pairs}; "
              f"alone {before:.1f}/s before the prune, {after:.1f}/s after; "
              f"longest lock wait {figures['longest_lock_wait_s']:.3f} s, prune {figures['prune_seconds']:.0f} s "
              f"({figures['prune_output'][0]}); its dry run {figures['dry_run_seconds']:.1f} s "
              f"({figures['dry_run']['deliveries']:,} deliveries, {figures['dry_run']['events']:,} events)", flush=True)
        out["cycles"].append(figures)
    return out


def lost(results: dict) -> list[str]:
    """What did not arrive verified in the retention phase's sending."""
    problems = []
    for i, cycle in enumerate(results.get("cycles", [])):
        sent = [("alone", cycle["alone"]), ("alone after", cycle["alone_after"]),
                *((f"while pruning ({stage})", f) for stage, sends in cycle["stages"].items() for f in sends),
                *((f"pruner stopped ({stage})", f) for stage, sends in cycle["paused"].items() for f in sends)]
        for label, figures in sent:
            if figures["lost"] or figures["unverified"]:
                problems.append(f"retention cycle {i + 1} {label}: {len(figures['lost'])} lost, "
                                f"{figures['unverified']} unverified")
    return problems
