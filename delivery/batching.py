"""Several due deliveries to one endpoint in one task: one claim, keep-alive POSTs, bulk writes.

One delivery at a time costs two transactions and about eight queries per
POST (services.delivery_attempt). A sender here claims up to BATCH_MAX due
deliveries of one endpoint in one UPDATE ... RETURNING, POSTs them one after
another over the thread's keep-alive connection, and records every attempt
in one transaction (one bulk insert, one update per outcome), then claims
again until nothing of that endpoint is due. On PostgreSQL only; elsewhere,
and for anything unusual, the one-by-one path runs.

What the one-by-one path guarantees still holds:
- only an active, live subscription with a clean record (no failure, breaker
  closed) is batched; paused, deleted, failing or test deliveries go through
  services.delivery_attempt, which holds, cancels, defers or probes them;
- with coalesced wake-ups (delivery.wakeups) a message stands for every
  delivery of its endpoint committed while the endpoint's key was set: the
  sender it starts drains whatever is due, and lets go of the key right
  before its last look; a failing endpoint's sender passes the key on to the
  next due delivery (one message at a time), so none waits for the sweeper;
  a sender whose full batch (a backlog) is still sending after HELPER_AFTER
  asks for one helper, so a slow endpoint's backlog still goes over up to
  WEBHOOKS_ENDPOINT_CONCURRENCY connections at once (a fast one's goes best
  over one);
- at most WEBHOOKS_ENDPOINT_CONCURRENCY senders per endpoint at once (slots
  are PostgreSQL advisory locks), each one thread, so a hanging endpoint ties
  up at most that many threads; a task that finds every slot taken leaves its
  delivery due for a sender that holds one, and each sender looks once more
  after letting go of its slot, so nothing is stranded;
- a batch stops at the first failed attempt and hands the rest to the sweeper;
  a failing endpoint's deliveries go one by one, within the same slots, and
  without a free slot wait for the sweeper instead of churning deferrals;
- a delete or pause that commits mid-batch stops every request not yet made:
  the claim itself takes only deliveries of an active, live subscription, and
  each later POST is preceded by a read of the delivery and its subscription
  (one round trip, no lock: a delete committed before it is seen, one
  committing after it finds the request already in flight, as on the
  one-by-one path);
- every POST is signed at send time with the current secret, every try is
  one Attempt row, and no POST starts after its lease could have run out.
"""

import functools
import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from delivery import health, services, signing, transport, wakeups
from delivery.models import Attempt, Delivery, webhook_id_for
from delivery.outbox import enqueue_deliveries
from subscriptions.models import Subscription
from subscriptions.signing_secrets import decrypt_secret

logger = logging.getLogger(__name__)

BATCH_MAX = 50
# Attempts are written at least this often within a batch (count, seconds).
RECORD_EVERY = 10
RECORD_SECONDS = 0.1
# A full batch still sending after this long asks for a helper sender (a slow endpoint's backlog).
HELPER_AFTER = 0.25
SLOT_NAMESPACE = 0x57EB0000  # second key of our advisory locks: slot numbers live above it
_NO_SLOT = object()  # what _with_slot returns when every slot of the endpoint is taken
# Ids in this process's batches in flight: their own messages then cost no query.
_in_flight: set[str] = set()
# Endpoints this process is sending to now, and how many senders: a task for one of
# them leaves its delivery to them (each looks again after it stops).
_senders: dict = {}
_senders_lock = threading.Lock()

_SUBSCRIPTION_FIELDS = Subscription._meta.concrete_fields
_LOOKUP = """
SELECT d.subscription_id, d.state, d.next_attempt_at, d.locked_until, e.is_test, s.state, s.deleted_at,
       h.consecutive_failures, h.open_until, h.probe_until, {}
FROM delivery_delivery AS d
JOIN delivery_event AS e ON e.id = d.event_id
JOIN subscriptions_subscription AS s ON s.id = d.subscription_id
LEFT JOIN delivery_endpointhealth AS h ON h.subscription_id = s.id
WHERE d.id = %s
""".format(", ".join(f"s.{f.column}" for f in _SUBSCRIPTION_FIELDS))

# Claims only while the subscription is active and not deleted, read in the same statement:
# the first POST of a batch follows it at once, as on the one-by-one path; later ones re-check.
_CLAIM = """
UPDATE delivery_delivery AS d SET locked_until = %(until)s
FROM delivery_event AS e
WHERE e.id = d.event_id AND d.id IN (
    SELECT d2.id FROM delivery_delivery AS d2 JOIN delivery_event AS e2 ON e2.id = d2.event_id
    JOIN subscriptions_subscription AS s2 ON s2.id = d2.subscription_id
    WHERE d2.subscription_id = %(subscription)s AND d2.state = 'pending' AND d2.next_attempt_at <= %(now)s
      AND s2.state = 'active' AND s2.deleted_at IS NULL
      AND (d2.locked_until IS NULL OR d2.locked_until < %(now)s) AND NOT e2.is_test
    ORDER BY d2.next_attempt_at, d2.created_at LIMIT %(limit)s
    FOR UPDATE OF d2 SKIP LOCKED)
RETURNING d.id, d.attempt_count, d.schedule_offset, d.event_id, e.body
"""


def delivery_send(*, delivery_id) -> None:
    """Send this delivery, with whatever else of its endpoint is due, or leave it to the sender that will."""
    if str(delivery_id) in _in_flight:
        return  # its sender in this process looks again when it stops
    if connection.vendor != "postgresql":
        services.delivery_attempt(delivery_id=delivery_id)
        return
    now = timezone.now()
    with connection.cursor() as cursor:  # every message costs this: plain SQL, no ORM compile
        cursor.execute(_LOOKUP, [delivery_id])
        row = cursor.fetchone()
    if row is None:
        return
    sub_id, state, due, locked, is_test, sub_state, deleted_at, failures, open_until, probe_until = row[:10]
    if locked is not None and locked > now:
        return  # in flight: its sender looks again when it stops
    own_due = state == Delivery.State.PENDING and due is not None and due <= now
    # With coalesced wake-ups this message may stand for every delivery of its endpoint
    # committed while its key was set: the sender drains whatever is due, this one or not.
    coalesced = wakeups.enabled() and not is_test
    if not own_due and not coalesced:
        return  # finished, or not due yet: not this message's business
    if is_test or deleted_at is not None or sub_state != Subscription.State.ACTIVE:
        if own_due:
            services.delivery_attempt(delivery_id=delivery_id)  # the operator's probe, or held, or cancelled
        if coalesced:
            wakeups.endpoint_release(sub_id)  # nothing of a paused or deleted endpoint is due
        return
    cap = max(1, settings.WEBHOOKS_ENDPOINT_CONCURRENCY or 1)
    if failures or open_until is not None or probe_until is not None:
        # A failing endpoint: one by one (breaker, probe, deferral), within the same slots. Without
        # a free slot the delivery waits for the slot holders' last look, or for the sweeper
        # (WEBHOOKS_SWEEP_GRACE), rather than being deferred and re-checked every few seconds
        # while the endpoint's requests hang.
        if own_due:
            done = _with_slot(sub_id, cap, lambda: services.delivery_attempt(delivery_id=delivery_id))
        if coalesced and (not own_due or done is not _NO_SLOT):
            _wake_next(sub_id)
        return
    first = row  # the lookup's subscription serves the first batch only: a look again reads it afresh
    while True:
        with _senders_lock:
            if _senders.get(sub_id, 0) >= cap:
                return  # this process's senders look again after they stop, and find this one
            _senders[sub_id] = _senders.get(sub_id, 0) + 1
        try:
            outcome = _with_slot(sub_id, cap, functools.partial(_drain, sub_id, first=first))
            first = None
        finally:
            # Before looking again: a task that saw this sender counted on that look.
            with _senders_lock:
                _senders[sub_id] -= 1
                if not _senders[sub_id]:
                    del _senders[sub_id]
        if outcome is _NO_SLOT:
            return  # every slot is taken, and their holders look again after letting go
        if not outcome:
            if coalesced:
                _wake_next(sub_id)  # stopped on a failure: the rest go one by one
            return
        if _last_look(sub_id, coalesced) is None:
            return


def _last_look(subscription_id, coalesced: bool):
    """Let go of the endpoint's wake key (coalesced), then return the id of a delivery still due, or None.

    In this order: a delivery committed before the key went is found here, one after it publishes.
    """
    if coalesced:
        wakeups.endpoint_release(subscription_id)
    return _due_left(subscription_id)


def _wake_next(subscription_id) -> None:
    """After a one-by-one send: if something of the endpoint is still due, publish a message for it."""
    due = _last_look(subscription_id, coalesced=True)
    if due is not None:
        enqueue_deliveries([due], endpoints=[subscription_id])


def _slot_key(subscription_id) -> int:
    return int.from_bytes(subscription_id.bytes[:4], "big", signed=True)


def _with_slot(subscription_id, cap: int, work):
    """Return work()'s result, run while holding one of the endpoint's cap sender slots; _NO_SLOT if none is free."""
    key = _slot_key(subscription_id)
    with connection.cursor() as cursor:
        for slot in range(cap):
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [key, SLOT_NAMESPACE + slot])
            if cursor.fetchone()[0]:
                break
        else:
            return _NO_SLOT
    try:
        return work()
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [key, SLOT_NAMESPACE + slot])
        except Exception:  # noqa: BLE001 - a lost connection has released the lock already
            logger.warning("Could not release sender slot of %s", subscription_id, exc_info=True)


_DUE = """
SELECT d.id FROM delivery_delivery AS d JOIN delivery_event AS e ON e.id = d.event_id
WHERE d.subscription_id = %(subscription)s AND d.state = 'pending' AND d.next_attempt_at <= %(now)s
  AND (d.locked_until IS NULL OR d.locked_until <= %(now)s) AND NOT e.is_test
ORDER BY d.next_attempt_at LIMIT 1
"""


def _due_left(subscription_id):
    """Return the id of the endpoint's oldest delivery due and not in flight (test sends aside), or None."""
    with connection.cursor() as cursor:
        cursor.execute(_DUE, {"subscription": subscription_id, "now": timezone.now()})
        row = cursor.fetchone()
    return row[0] if row else None


_SUBSCRIPTION = "SELECT {} FROM {} WHERE id = %s".format(  # noqa: S608 - names from the model, not input
    ", ".join(f.column for f in _SUBSCRIPTION_FIELDS), Subscription._meta.db_table)


def _subscription_get(subscription_id) -> Subscription | None:
    """Return the subscription as it is now (read before every batch: a pause, delete or new URL shows)."""
    with connection.cursor() as cursor:
        cursor.execute(_SUBSCRIPTION, [subscription_id])
        row = cursor.fetchone()
    return None if row is None else _subscription_from(row)


def _subscription_from(values) -> Subscription:
    return Subscription.from_db(connection.alias, [f.attname for f in _SUBSCRIPTION_FIELDS], values)


def _drain(subscription_id, first=None) -> bool:
    """Claim, send and record batches until nothing is due; return False when it stopped on trouble.

    `first` is the message's lookup row, which carries the subscription as it
    was a moment ago: the first batch needs no read of its own (the claim
    re-checks that the subscription is active), later ones read it again.
    """
    coalesced = wakeups.enabled()
    helped = False
    while True:
        if first is not None:
            # The key was set by whoever published this message: no refresh needed yet.
            subscription, first = _subscription_from(first[10:]), None
        else:
            if coalesced:
                wakeups.endpoint_hold(subscription_id)  # new deliveries publish nothing: this sender finds them
            subscription = _subscription_get(subscription_id)
        if subscription is None or subscription.is_deleted or not subscription.is_active:
            return False  # its deliveries are held or cancelled by the pause or delete
        now = timezone.now()
        lease = health.lease_seconds()
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM, {"until": now + timedelta(seconds=lease), "subscription": subscription_id,
                                    "now": now, "limit": BATCH_MAX})
            rows = cursor.fetchall()
        if not rows:
            return True
        ids = {str(r[0]) for r in rows}
        _in_flight.update(ids)
        try:
            # A full batch is a backlog: if it is slow to send, one more sender helps (once per sender).
            failed, asked = _send_batch(subscription, rows, lease,
                                        helper=coalesced and not helped and len(rows) == BATCH_MAX)
        finally:
            _in_flight.difference_update(ids)
        helped = helped or asked
        if failed:
            return False
        if len(rows) < BATCH_MAX:
            return True  # all that was due; what came due since is found by the caller's look after the slot


def _call_helper(subscription_id) -> bool:
    """Start one more sender for a slow backlog; return True if one was asked for.

    With one message per endpoint, a backlog would otherwise go one POST at a
    time, however slow the endpoint. Each sender asks for one helper, with a
    message of its own for the next due delivery, so a slow endpoint with a
    backlog ramps up to WEBHOOKS_ENDPOINT_CONCURRENCY senders (the helper
    asked for beyond that finds no slot and stops).
    """
    due = _due_left(subscription_id)
    if due is None:
        return False
    enqueue_deliveries([due])  # its own message, whatever the wake key says
    return True


def _send_batch(subscription, rows, lease: float, helper: bool = False) -> tuple[bool, bool]:
    """POST the claimed rows in order and record them; return (one failed, a helper was asked for).

    After a failure the rest are released. With `helper`, a batch still
    sending after HELPER_AFTER seconds asks for one more sender: a fast
    endpoint's backlog is best sent by one sender over one connection, a
    slow one's over several.
    """
    started = time.monotonic()
    # A POST may start only while it can finish before the lease runs out.
    send_until = started + lease - settings.WEBHOOKS_TIMEOUT - 1
    secret = decrypt_secret(subscription.secret_encrypted)
    sent, failed, done, asked = [], False, 0, False
    recorded_at = started
    for i, row in enumerate(rows):
        if helper and not asked and time.monotonic() - started > HELPER_AFTER:
            asked = _call_helper(subscription.id)
        # The claim checked the subscription; each later POST reads it again first.
        if time.monotonic() > send_until or (i and not _still_wanted(row[0])):
            break
        sent.append((row, *_post(subscription, secret, row)))
        done += 1
        if not sent[-1][-1].ok or sent[-1][-1].error_kind:
            failed = True
            break
        if len(sent) >= RECORD_EVERY or time.monotonic() - recorded_at > RECORD_SECONDS:
            # Recorded as it goes: a worker that dies mid-batch re-sends only what it had not recorded.
            _record(subscription, sent, unsent=[], stopped=False)
            sent, recorded_at = [], time.monotonic()
    _record(subscription, sent, unsent=[r[0] for r in rows[done:]], stopped=failed)
    return failed, asked


_WANTED = """
SELECT 1 FROM delivery_delivery AS d JOIN subscriptions_subscription AS s ON s.id = d.subscription_id
WHERE d.id = %s AND d.state = 'pending' AND s.state = 'active' AND s.deleted_at IS NULL
"""


def _still_wanted(delivery_id) -> bool:
    """Return True unless a delete or pause has committed since the claim (read right before the POST)."""
    with connection.cursor() as cursor:
        cursor.execute(_WANTED, [delivery_id])
        return cursor.fetchone() is not None


def _post(subscription, secret: str, row) -> tuple:
    delivery_id, attempt_count, schedule_offset, event_id, body_text = row
    body = body_text.encode()
    headers = signing.signed_headers(secret=secret, msg_id=webhook_id_for(event_id), timestamp=int(time.time()),
                                     body=body)
    started_at = timezone.now()
    return started_at, headers, transport.post(subscription.url, body, headers)


# One statement per status code; a delivery cancelled or held while in flight has its attempt
# counted and keeps its state, as on the one-by-one path (SET reads the row as it was).
_SUCCEEDED = """
UPDATE delivery_delivery SET attempt_count = attempt_count + 1, last_status_code = %(status)s, last_error = '',
    locked_until = NULL,
    state = CASE WHEN state = %(pending)s THEN %(succeeded)s ELSE state END,
    completed_at = CASE WHEN state = %(pending)s THEN %(now)s ELSE completed_at END,
    next_attempt_at = CASE WHEN state = %(pending)s THEN NULL ELSE next_attempt_at END
WHERE id = ANY(%(ids)s::uuid[])
"""
_ATTEMPT_FIELDS = [f for f in Attempt._meta.concrete_fields if not f.primary_key]
_ATTEMPT_COPY = "COPY {} ({}) FROM STDIN".format(
    Attempt._meta.db_table, ", ".join(f.column for f in _ATTEMPT_FIELDS))


def _uuid_array(ids) -> str:
    """Return ids as one PostgreSQL array literal: one parameter, not one per id (the driver quotes each)."""
    return "{" + ",".join(str(i) for i in ids) + "}"


def _attempts_copy(attempts: list[Attempt]) -> None:
    """Insert Attempt rows with COPY (half the CPU of bulk_create's UNNEST arrays, measured)."""
    if not attempts:
        return
    with connection.cursor() as cursor, cursor.cursor.copy(_ATTEMPT_COPY) as copy:
        for attempt in attempts:
            copy.write_row([f.get_db_prep_save(getattr(attempt, f.attname), connection) for f in _ATTEMPT_FIELDS])


def _record(subscription, sent: list, *, unsent: list, stopped: bool) -> None:
    """Write the attempts and move the deliveries on, in one transaction; release what was not sent."""
    now = timezone.now()
    pause_reason = None
    with transaction.atomic():
        _attempts_copy([
            services.attempt_row(delivery_id=row[0], number=row[1] + 1, url=subscription.url, started_at=started,
                               request_headers=headers, response=response)
            for row, started, headers, response in sent
        ])
        by_outcome: dict[int, list] = {}
        for row, _, _, response in sent:
            if response.ok and not response.error_kind:
                by_outcome.setdefault(response.status_code, []).append(row[0])
        with connection.cursor() as cursor:
            for status, ids in by_outcome.items():
                cursor.execute(_SUCCEEDED, {"status": status, "now": now, "ids": _uuid_array(ids),
                                            "pending": Delivery.State.PENDING.value,
                                            "succeeded": Delivery.State.SUCCEEDED.value})
        if by_outcome:
            health.endpoint_record(subscription=subscription, succeeded=True, status_code=200, now=now)
        if stopped:
            row, _, _, response = sent[-1]
            number = row[1] + 1
            bookkeeping = {"attempt_count": number, "last_status_code": response.status_code,
                           "last_error": services._summary(response), "locked_until": None}
            delivery = Delivery(id=row[0], attempt_count=row[1], schedule_offset=row[2])
            moved = Delivery.objects.filter(id=row[0], state=Delivery.State.PENDING).update(
                **bookkeeping, **services._next_state(delivery, response, number=number, now=now))
            if not moved:
                Delivery.objects.filter(id=row[0]).update(**bookkeeping)
            pause_reason = health.endpoint_record(subscription=subscription, succeeded=False,
                                                  status_code=response.status_code, now=now)
        if unsent:
            # Their messages are spent (skipped while in flight): the sweeper sends them when due.
            Delivery.objects.filter(id__in=unsent).update(locked_until=None, enqueued_at=None)
    if pause_reason:
        health.endpoint_pause(subscription=subscription, reason=pause_reason)
