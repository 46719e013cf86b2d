"""Retention: prune finished deliveries, their attempts and their events after WEBHOOKS_RETENTION_DAYS.

Each batch is its own short transaction (rows locked with SKIP LOCKED, so a
worker or a redelivery is never kept waiting), and an unfinished delivery
(pending or held) is never pruned, however old. The charts' hourly roll-up
(AttemptHour) and the closed hours' summaries (HourSummary) go by the same
period. `deliveries_prune_preview` counts what a run would remove, deleting
nothing (`prune_deliveries --dry-run`).

One run at a time: a run holds the pruner's slot (delivery.slots, scope
PRUNE_SCOPE), leased for PRUNE_LEASE seconds and renewed before each batch and
before its VACUUM; a run started meanwhile (the hourly task beside a manual
`prune_deliveries`, or a second beat) is refused with `PruneRunning` and
deletes nothing. Two at once skipped each other's locked rows and made the
second VACUUM wait minutes for the first (docs/PERFORMANCE.md, "Retention
beside sending"). A run killed mid-way frees the slot when its lease runs out.

The pruner takes a bounded share of the machine: after each batch it rests
PACE times as long as the batch took, so the senders beside it keep most of the
cores and of the database. On PostgreSQL a run that deleted rows ends with a
plain VACUUM (ANALYZE) of the tables it pruned (no FULL, no truncation: no lock
a sender waits for), so the next rows reuse the space the deleted ones held
and the tables stay the same size from one period to the next, whether or not
autovacuum is on or has come round yet. SQLite reuses freed pages by itself.
"""

import functools
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from delivery import slots
from delivery.compiled import Compiled, params
from delivery.models import Attempt, AttemptHour, Delivery, Event, HourSummary

MAX_BATCHES = 1000  # per run; the next scheduled run carries on
BATCH_SIZE = 1000  # rows per pruning transaction
# After each batch the pruner sleeps PACE x the time the batch took: it works a twelfth of the time.
# Beside the bench's senders on a 2-core machine (docs/PERFORMANCE.md, "Retention beside sending") pruning
# slowed sending by 39-70 % unpaced, by 25-27 % working a sixth of the time (PACE 5) on a quiet machine;
# the target is at most 20 %. A run takes 12 times as long as its deletes: 154-193 s per 100,000 deliveries
# there, so the hourly run of a sender of 1 million a day prunes for about a minute and a quarter.
PACE = 11.0
# The closing VACUUM sleeps this long each time it has done vacuum_cost_limit's worth of page reads and
# writes (autovacuum's default is 2 ms). Over a 10M-delivery log (docs/PERFORMANCE.md, "Retention beside
# sending"), each pass reading every index of the pruned tables, it slowed sending beside it by 55 % at 2 ms
# with PostgreSQL's parallel index workers, 24-39 % at 20 ms with them, 9.6 % at 20 ms in one process.
VACUUM_COST_DELAY_MS = 20

PRUNE_SCOPE = "job:prune_deliveries"
# A run renews its lease before each batch and before its VACUUM, so the lease must outlast the longest of
# those: the closing VACUUM, minutes over a 10M-delivery log here (a whole day's prune took 697-829 s there,
# docs/PERFORMANCE.md). An hour leaves room for a log several times that; a run killed mid-way keeps the next
# one out for at most that long (the hourly task skips a turn, saying why in its log).
PRUNE_LEASE = 3600.0


class PruneRunning(Exception):
    """Another prune holds the pruner's slot: this one deleted nothing."""


def _cutoff(days: float | None) -> datetime:
    days = settings.WEBHOOKS_RETENTION_DAYS if days is None else days
    return timezone.now() - timedelta(days=days)


def _old_deliveries(cutoff: datetime):
    return Delivery.objects.filter(completed_at__lt=cutoff).exclude(state__in=Delivery.UNFINISHED)


def deliveries_prune(*, days: float | None = None, batch_size: int | None = None) -> dict[str, int]:
    """Delete what finished before the retention period; return counts of deliveries, events and roll-up rows."""
    batch_size = batch_size or BATCH_SIZE
    cutoff = _cutoff(days)
    holder = slots.new_holder()

    def renew() -> None:
        slots.slots_renew(holder=holder, until=_lease_until())

    if not slots.slot_take_only(scope=PRUNE_SCOPE, holder=holder, until=_lease_until()):
        until = slots.slot_held_until(scope=PRUNE_SCOPE)
        raise PruneRunning(f"Another prune is running (its lease ends at {until:%Y-%m-%d %H:%M:%S} UTC at the "
                           "latest); nothing was pruned.")
    try:
        # Deliveries first, with their attempts: their events become free to go. Then the events older than
        # the cutoff that no delivery refers to any more (a delivery that stays keeps its event).
        counts = {
            "deliveries": _delete_in_batches(_old_deliveries(cutoff), order="completed_at", batch_size=batch_size,
                                             renew=renew, children=(Attempt, "delivery")),
            "events": _delete_in_batches(Event.objects.filter(created_at__lt=cutoff), order="created_at",
                                         batch_size=batch_size, renew=renew,
                                         unless_referenced_by=(Delivery, "event")),
            "attempt_hours": _delete_in_batches(AttemptHour.objects.filter(hour__lt=cutoff), order="hour",
                                                batch_size=batch_size, renew=renew),
            "hour_summaries": _delete_in_batches(HourSummary.objects.filter(hour__lt=cutoff), order="hour",
                                                 batch_size=batch_size, renew=renew),
        }
        if any(counts.values()) and connection.vendor == "postgresql":
            renew()
            _vacuum([Delivery, Attempt, Event, AttemptHour, HourSummary])
    finally:
        slots.slots_release(holder=holder)
    return counts


def _lease_until() -> datetime:
    return timezone.now() + timedelta(seconds=PRUNE_LEASE)


def _vacuum(models) -> None:
    """VACUUM (ANALYZE) these tables, throttled (VACUUM_COST_DELAY_MS) and in one process as autovacuum's are
    (PARALLEL 0: no worker per index beside it), without truncating them (truncation takes a lock that stops
    every reader and writer of the table), then VACUUM them again; needs autocommit (not inside a transaction).

    The first pass frees the deleted rows' space in the tables and empties index pages; an emptied index
    page can be reused only once no transaction could still see it, which is not yet so within the pass
    that emptied it, so the second pass hands those pages back (it scans an index only when a twentieth or
    more of its pages wait for that; otherwise it costs next to nothing). With one pass the bench's
    indexes grew by a cycle's worth on the next fill (docs/PERFORMANCE.md, "Retention beside sending");
    in a scratch table of 200,000 rows deleted and written again, one pass left the index at 26.6 MB,
    two at 15.9 MB (10.8 MB before the delete).
    """
    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"SET vacuum_cost_delay = {VACUUM_COST_DELAY_MS}")
        try:
            cursor.execute(f"VACUUM (ANALYZE, TRUNCATE false, PARALLEL 0) {tables}")
            # A transaction id used and ended after the first pass: the emptied pages' deletion is then in
            # the past of every transaction (on a busy primary the senders see to that anyway).
            cursor.execute("SELECT pg_current_xact_id()")
            cursor.execute(f"VACUUM (TRUNCATE false, PARALLEL 0) {tables}")
        finally:
            cursor.execute("RESET vacuum_cost_delay")


def deliveries_prune_preview(*, days: float | None = None) -> dict:
    """Count what deliveries_prune would delete now, deleting nothing: {"cutoff", "deliveries", "attempts",
    "events", "attempt_hours", "hour_summaries"} (a run deletes at most MAX_BATCHES batches of each; the
    next run goes on)."""
    cutoff = _cutoff(days)
    old = _old_deliveries(cutoff)
    staying = Delivery.objects.filter(event=OuterRef("pk")).filter(
        Q(state__in=Delivery.UNFINISHED) | Q(completed_at__isnull=True) | Q(completed_at__gte=cutoff))
    return {
        "cutoff": cutoff,
        "deliveries": old.count(),
        "attempts": Attempt.objects.filter(delivery__in=old).count(),
        "events": Event.objects.filter(created_at__lt=cutoff).filter(~Exists(staying)).count(),
        "attempt_hours": AttemptHour.objects.filter(hour__lt=cutoff).count(),
        "hour_summaries": HourSummary.objects.filter(hour__lt=cutoff).count(),
    }


def _delete_in_batches(queryset, *, order: str, batch_size: int, renew, children: tuple | None = None,
                       unless_referenced_by: tuple | None = None) -> int:
    """Delete the queryset's rows batch by batch, oldest `order` first, each in a short transaction (after
    `renew()`, which extends the run's lease) and followed by a rest of PACE times its length; return how many.

    Each batch starts after the (`order`, id) where the last one ended: the index entries of rows
    deleted before are dead until vacuum, and a batch that started from the oldest end again would
    walk all of them (a run's batches grew from milliseconds to 0.7 s each at a million rows).
    The rows go by plain DELETEs of their ids, after the rows that refer to them (`children`: (model, its
    foreign key), deleted first), not through Django's cascade, which loads every row as a model first
    (an event with its JSON body) and asks for the rows that refer to it. With `unless_referenced_by`
    ((model, its foreign key)), a batch's rows that such a row still refers to stay: the batch is chosen by
    `order` alone and the DELETE asks, for its own ids, whether anything refers to them (asked of the whole
    table, "not referenced" made the planner hash all 10 million deliveries for every batch: 3.7 s a batch).
    """
    deleted, last = 0, None
    delete_children = _delete_by_ids(*children) if children is not None else None
    delete_rows = _delete_by_ids(queryset.model, unless_referenced_by=unless_referenced_by)
    for _ in range(MAX_BATCHES):
        renew()
        started = time.monotonic()
        batch = queryset
        if last is not None:  # strictly after the last row of the batch before, whatever rows share its `order`
            batch = batch.filter(Q(**{f"{order}__gt": last[1]}) | Q(**{order: last[1], "id__gt": last[0]}),
                                 **{f"{order}__gte": last[1]})
        with transaction.atomic():
            rows = list(batch.order_by(order, "id").select_for_update(skip_locked=True)
                        .values_list("id", order)[:batch_size])
            if rows:
                # A short last batch repeats its last id: one statement shape per batch size.
                ids = [r[0] for r in rows] + [rows[-1][0]] * (batch_size - len(rows))
                if delete_children is not None:
                    delete_children.run((batch_size,), using=queryset.db, ids=ids)
                deleted += delete_rows.run((batch_size,), using=queryset.db, ids=ids)
        if len(rows) < batch_size:
            break
        last = rows[-1]
        time.sleep(PACE * (time.monotonic() - started))
    return deleted


@functools.cache
def _delete_by_ids(model, key: str | None = None, *, unless_referenced_by: tuple | None = None) -> Compiled:
    """Return a DELETE of `model`'s rows whose id is in a list of ids (with `key`, of its rows whose foreign key
    `key` refers to one of them; with `unless_referenced_by` (model, foreign key), of those no such row refers
    to), compiled once per list length: a plain DELETE, not Django's cascade."""
    if key is None:
        def rows(n):
            chosen = model.objects.filter(id__in=params("ids", model._meta.pk, n))
            if unless_referenced_by is not None:
                referring, fk = unless_referenced_by
                chosen = chosen.filter(~Exists(referring.objects.filter(**{fk: OuterRef("pk")})))
            return chosen
        return Compiled(rows, delete=True)
    parent = model._meta.get_field(key).related_model
    return Compiled(lambda n: model.objects.filter(**{f"{key}__in": parent.objects.filter(
        id__in=params("ids", parent._meta.pk, n)).values("id")}), delete=True)
