"""SQL statements and round trips per delivery, by how the events arrive: a burst, a held backlog, a trickle.

Measured in the bench process itself, before any worker starts: the events are
recorded as callers record them (each in its own transaction), and the sender
runs in-process exactly as a worker runs it for one message
(delivery.tasks.send_endpoint), while Django counts every statement
(CaptureQueriesContext). Round trips add the transaction's BEGIN and COMMIT
(PostgreSQL: psycopg sends each on its own; SQLite runs them as statements).
The caller's side is counted apart: record_activity's statements in its
transaction, and the wake-up on commit.
"""

from contextlib import contextmanager

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from bench.phases import endpoint_make, organisation_make
from subscriptions.activity import record_activity
from subscriptions.activity_types import ACTIVITY_TYPES
from subscriptions.services import subscription_pause, subscription_resume

_BOOKKEEPING = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT", "ROLLBACK")


@contextmanager
def _counted():
    """Yield a dict that ends up with the statements and the transactions committed while the block ran."""
    counts = {"statements": 0, "transactions": 0}
    real_commit = connection.commit

    def commit():
        counts["transactions"] += 1
        return real_commit()

    connection.commit = commit
    try:
        with CaptureQueriesContext(connection) as queries:
            yield counts
    finally:
        del connection.commit  # back to the class's method
    counts["statements"] = sum(1 for q in queries.captured_queries if not q["sql"].startswith(_BOOKKEEPING))


def _emit(org, n: int) -> None:
    data = ACTIVITY_TYPES["lot.created"].sample
    for _ in range(n):
        with transaction.atomic():
            record_activity(organisation=org, activity_type="lot.created", data=data)


def _per_delivery(counts: dict, deliveries: int) -> dict:
    round_trips = counts["statements"] + 2 * counts["transactions"]
    return {"statements": counts["statements"] / deliveries, "round_trips": round_trips / deliveries,
            "deliveries": deliveries}


def statements_per_delivery(rx, *, events: int) -> dict:
    """Return statements and round trips per delivery in each mode, the sender's and the caller's."""
    from delivery.tasks import send_endpoint

    out = {}
    org = organisation_make("stmt")
    # Warm-up: the endpoint's and organisation's slot rows are made on a scope's first use, and each
    # compiled statement is compiled once per process.
    warm = endpoint_make(rx, org, f"/stmt-{org.slug}/warm", ["lot.created"])
    _emit(org, 3)
    send_endpoint(str(warm.id))
    warm.delete()

    burst = endpoint_make(rx, org, f"/stmt-{org.slug}/burst", ["lot.created"])
    _emit(org, events)
    with _counted() as counts:
        send_endpoint(str(burst.id))
    out["burst"] = _per_delivery(counts, events)
    burst.delete()

    backlog = endpoint_make(rx, org, f"/stmt-{org.slug}/backlog", ["lot.created"])
    subscription_pause(subscription=backlog)
    _emit(org, events)
    with _counted() as counts:
        subscription_resume(subscription=backlog)
        send_endpoint(str(backlog.id))
    out["backlog"] = _per_delivery(counts, events)
    backlog.delete()

    trickle = endpoint_make(rx, org, f"/stmt-{org.slug}/trickle", ["lot.created"])
    n = max(3, events // 10)
    sender_counts = {"statements": 0, "transactions": 0}
    for _ in range(n):
        _emit(org, 1)
        with _counted() as counts:
            send_endpoint(str(trickle.id))
        for key in sender_counts:
            sender_counts[key] += counts[key]
    out["trickle"] = _per_delivery(sender_counts, n)

    with _counted() as counts:
        with transaction.atomic():
            with CaptureQueriesContext(connection) as inside:
                record_activity(organisation=org, activity_type="lot.created",
                                data=ACTIVITY_TYPES["lot.created"].sample)
    in_transaction = sum(1 for q in inside.captured_queries if not q["sql"].startswith(_BOOKKEEPING))
    out["caller"] = {"in_transaction": in_transaction, "on_commit": counts["statements"] - in_transaction,
                     "round_trips": counts["statements"] + 2 * counts["transactions"]}
    trickle.delete()
    return out
