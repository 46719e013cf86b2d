"""The one sending path: claim an endpoint's due deliveries, check each, sign, POST, record.

Every delivery goes this way, whatever the store and whatever the case (a
backlog, a single event, a test send, the probe of an open breaker, a retry):
a batch of one is the same code as a batch of BATCH_MAX. A Sender is one run
of it for one endpoint, from its message to its last look:

1. Read the endpoint (delivery.snapshots); a paused or deleted one's
   deliveries are held or cancelled, and the sender stops.
2. Take a slot of the endpoint and one of its organisation (delivery.slots),
   or mark the wake row waiting and take once more (a slot freed before the
   mark is found so): whoever frees a slot after the mark wakes it (and when
   both happen, the woken sender sends and this one gives its slots back).
3. Ask the breaker what may go (delivery.health.gate): a batch, one probe, or
   test sends only; claim that (delivery.states: an ordered endpoint has one
   sendable delivery at a time, its oldest unfinished one). An endpoint with a rate limit
   claims about 0.2 s of its rate and reserves the batch's requests
   (delivery.pacing): each then goes at its moment, or, when the endpoint must
   wait longer than a thread may, the batch is given back and the endpoint's
   next sender is scheduled for later (no thread waits, no retry is used).
   While a full batch of such an endpoint sends, the next one is claimed and
   reserved before its last request, so the schedule goes on without a gap.
4. For each claimed delivery: renew the lease if the request could outlive
   it (the lease follows the endpoint's own timeout), read the subscription
   again (a delete or pause that committed stops the batch; an edited URL,
   timeout or a regenerated secret apply; the claim's own read serves the
   batch's first request), sign the exact bytes with the current secret, POST
   under the transport's hard deadline (the endpoint's timeout). Whatever goes
   wrong in that step is an attempt with an error, never an unrecorded re-send.
5. Record successes together (RECORD_EVERY, RECORD_SECONDS), a failure at once
   with the successes before it, in one transaction (states.deliveries_record
   and the breaker's record); then report them (logs, metrics, alerts).
   After a failure, give the rest of the batch back and ask the breaker again.
6. A full batch (a backlog) whose first request answered asks for one helper
   sender. When a claim finds less than it asked for: free the slots;
   a worker's holder listens for a wake (delivery.wakeups.endpoint_listen: up to
   LISTEN_SECONDS, the first caller after it wakes it, and it starts again at 1);
   then, or at once elsewhere (after lingering once, LINGER, for work about to
   commit), the holder deletes the wake row and looks once more: what committed
   before is found, the rest wakes itself.
"""

import dataclasses
import enum
import logging
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from delivery import health, metrics, pacing, signals, slots, snapshots, states, transport, wakeups
from delivery.models import Attempt, Delivery
from delivery.recorded_answer import body_for_storage, headers_for_storage
from delivery.signing import signed_headers
from subscriptions.custom_headers import (
    CustomHeaderUnsendable,
    headers_for_sending,
    headers_shown,
    secrets_scrubbed,
)
from subscriptions.models import Subscription
from subscriptions.services import subscription_pause
from subscriptions.signing_secrets import decrypt_secret

logger = logging.getLogger(__name__)

# At most this many deliveries per claim: a claim costs two statements, and a sender keeps its
# claimed deliveries from the endpoint's other senders until it has sent them.
BATCH_MAX = 20
# A holder that found nothing more due waits this long, once, before it lets go of the endpoint, for
# work about to commit (a caller recording events one after another): a quick series costs one message.
LINGER = 0.02
# Successes are recorded together, at least this often (count, seconds); a failure at once, with them. A full
# batch's successes make one record (a transaction of three statements): at 10, two records per batch cost about a
# tenth more CPU per delivery in a backlog (docs/PERFORMANCE.md). RECORD_SECONDS bounds what a crash re-sends.
RECORD_EVERY = 20
RECORD_SECONDS = 0.1
# An attempt's outcome in metrics and logs, by the delivery's real state after it (metrics.OUTCOMES).
OUTCOMES = {Delivery.State.SUCCEEDED: "succeeded", Delivery.State.PENDING: "retrying",
            Delivery.State.FAILED: "failed", Delivery.State.HELD: "held", Delivery.State.CANCELLED: "cancelled"}


class Skipped(enum.Enum):
    """Why a claimed delivery was not sent."""

    STOPPED = "the subscription was paused or deleted meanwhile"  # the whole batch stops
    FINISHED = "the delivery finished meanwhile"  # this one only


class BatchEnd(enum.Enum):
    """How sending a claimed batch ended."""

    SENT = "every delivery was sent"
    FAILED = "an attempt failed: the rest was given back, for the breaker to decide"
    STOPPED = "the subscription was paused or deleted meanwhile"


@dataclass(frozen=True)
class Recorded:
    """What recording some attempts came to: each delivery's state after it, and the breaker's verdicts."""

    sent: list[states.Sent]
    after: dict
    verdicts: list[health.Verdict]


@dataclass(frozen=True)
class _Ahead:
    """The next batch of a paced endpoint, claimed before the last request of the one sending (Sender._claim_ahead).

    `reservation`: its requests' moments, when the pace granted them at once; None: reserved when it is taken.
    """

    batch: list[states.Claimed] | None
    limit: int
    reservation: pacing.Reservation | None

    @property
    def ids(self) -> list:
        return [d.id for d in self.batch or []]


class _Unrecorded:
    """Successes sent but not recorded yet (recorded together: RECORD_EVERY or RECORD_SECONDS, whichever first)."""

    def __init__(self):
        self.sent: list[states.Sent] = []
        self._since = 0.0

    def add(self, sent: states.Sent) -> None:
        if not self.sent:
            self._since = time.monotonic()
        self.sent.append(sent)

    def due(self) -> bool:
        return len(self.sent) >= RECORD_EVERY or time.monotonic() - self._since > RECORD_SECONDS

    def take(self) -> list[states.Sent]:
        taken, self.sent = self.sent, []
        return taken


def endpoint_send(*, subscription_id, helper: bool = False) -> int:
    """Send what is due to this endpoint while its caps allow; return how many attempts were made."""
    return Sender(subscription_id, helper=helper).run()


def endpoint_try_now(*, subscription_id) -> states.Sent | None:
    """End an open breaker's cool-down now and send its probe in this process: one request; return what was sent.

    The probe goes the one sending path (slots, claim, gate, sign, POST, record), as a sender of one
    claim that leaves the wake row to its holder. None when nothing was sent (nothing due, every
    sender slot taken, or another sender's probe in flight). After a probe that succeeded the
    breaker is closed: the endpoint is woken for the rest.
    """
    health.breaker_probe_now(subscription_id=subscription_id)
    sender = Sender(subscription_id, helper=True, once=True)
    sender.run()
    if sender.last_sent is not None and sender.last_sent.response.ok:
        wakeups.endpoints_awaken([subscription_id])
    return sender.last_sent


class Sender:
    """One sender of one endpoint. From start to end it owns its two slots, the deliveries it claimed and,
    unless it is a helper, the endpoint's wake row (a helper that is refused leaves it to its holder)."""

    def __init__(self, subscription_id, *, helper: bool = False, once: bool = False):
        self.subscription_id = subscription_id
        self.helper = helper
        self.once = once  # one claim of one delivery (Try now's probe), then stop
        self.last_sent: states.Sent | None = None
        self.holder = slots.new_holder()
        self.timeout: float = 0.0  # the longest request the leases cover (the endpoint's timeout, delivery.slots)
        self.until = slots.lease_until()
        self.attempts = 0
        self.endpoint: snapshots.Endpoint | None = None
        self._record_clean = True  # the endpoint's breaker record has nothing to forget after a success
        self._helped = False
        self._secrets: dict[str, str] = {}  # encrypted -> plain, for this sender's run (same text, same secret)
        self._rate: float | None = None  # the endpoint's pace as last read (delivery.pacing), None: unpaced
        self._ordered = False  # the endpoint delivers in order, as last read
        self._moments: list[float] | None = None  # when each request of the claimed batch may go (a paced endpoint)
        self._end = 0.0  # when the pace's schedule ends after the claimed batch's requests (a paced endpoint)
        self._interval = 0.0  # 1/rate of the claimed batch's reservation (its rate: the pace's may change meanwhile)
        # A paced endpoint: when this sender's next request may leave, one interval after its last one did. A
        # request that left late (a read or the machine busy) pushes the next: never two closer than 1/rate.
        self._next_post = 0.0
        # The next batch, claimed (and reserved, if it could be at once) before the last request of this one.
        self._ahead: _Ahead | None = None
        self._resume_in: float | None = None  # the pace asks for a wait too long for a thread: resume this much later

    # --- from start to end ---------------------------------------------------------------

    def run(self) -> int:
        """Send what is due while the caps allow; return how many attempts were made."""
        while self._start():
            try:
                self._drain()
            finally:
                self._stop()
            if self._resume_in is not None:  # the holder leaves the endpoint awake, its next sender scheduled
                if not self.helper:
                    wakeups.endpoint_resume_in(self.subscription_id, self._resume_in)
                break
            if self.helper or self.once:
                break
            listened = wakeups.endpoint_listen(self.subscription_id)
            if listened is wakeups.Listened.WOKEN:
                continue
            if not self._look_again(linger=listened is wakeups.Listened.NOT_LISTENING):
                break
        return self.attempts

    def _start(self) -> bool:
        """Read the endpoint and take the slots; return False (and settle the wake row) if it may not send."""
        if not self._read():
            if not self.helper:
                wakeups.endpoint_sleep(self.subscription_id)
            return False
        self.timeout = self.endpoint.sending.timeout
        self.until = slots.lease_until(self.timeout)
        scopes = {"endpoint": (slots.endpoint_scope(self.subscription_id), slots.ENDPOINT_SENDERS),
                  "organisation": (slots.organisation_scope(self.endpoint.organisation_id),
                                   slots.ORGANISATION_SENDERS)}
        if slots.slots_take(**scopes, holder=self.holder, until=self.until):
            return True
        if self.helper:
            return False
        # Mark the row waiting, then take once more: a sender that freed a slot before the mark did not see the
        # mark, and one that frees a slot after it wakes this endpoint (as with the listen's look after its mark).
        wakeups.endpoint_wait_for_slot(self.subscription_id)
        if not slots.slots_take(**scopes, holder=self.holder, until=self.until):
            return False
        if wakeups.endpoint_stop_waiting(self.subscription_id):
            return True
        # A sender that freed a slot after the mark took it and published this endpoint's next sender: that
        # one sends, this one gives its slots back (and wakes whoever marked its row meanwhile).
        self._free_slots()
        return False

    def _stop(self) -> None:
        """Free the slots, and wake the endpoints of the organisation that found them all taken.

        A paced endpoint whose requests left later than reserved keeps its next request one interval
        after this sender's last one, whoever sends it.
        """
        if self._next_post > self._end:
            pacing.pace_push(subscription_id=self.subscription_id, to=self._next_post)
            self._end = self._next_post
        self._free_slots()

    def _free_slots(self) -> None:
        slots.slots_release(holder=self.holder)
        wakeups.endpoints_wake_waiting(organisation_id=self.endpoint.organisation_id)

    def _look_again(self, *, linger: bool) -> bool:
        """Linger, delete the wake row, look once more; return True if there is work and the endpoint is ours again.

        While the sender lingers its row stays: a caller committing meanwhile publishes
        nothing, and this look finds its delivery (a quick series costs one message).
        What commits after the delete wakes the endpoint itself. A holder that has just
        listened (delivery.wakeups.endpoint_listen) does not linger again.
        """
        if linger:
            time.sleep(LINGER)
        wakeups.endpoint_sleep(self.subscription_id)
        return (states.has_sendable(subscription_id=self.subscription_id)
                and wakeups.endpoint_awaken(self.subscription_id))

    def _read(self) -> bool:
        """Read the endpoint as it is now; return False (holding or cancelling its deliveries) if it does not send."""
        self.endpoint = snapshots.endpoint_snapshot(subscription_id=self.subscription_id)
        if self.endpoint is None:
            return False
        self._record_clean = self.endpoint.record is None or self.endpoint.record.clean
        self._rate, self._ordered = pacing.pace_rate(self.endpoint.sending), self.endpoint.sending.ordered
        if self.endpoint.sending.sends:
            return True
        if self.endpoint.sending.deleted_at is not None:
            states.deliveries_cancel(subscription_id=self.subscription_id)
        else:
            states.deliveries_hold(subscription_id=self.subscription_id)
        return False

    # --- claiming and sending --------------------------------------------------------------

    def _drain(self) -> None:
        """Claim and send until a claim finds less than it asked for, or nothing may go."""
        while True:
            batch, limit = self._claim()
            if not batch:
                return
            end = self._send(batch, limit)
            if self.once or end is BatchEnd.STOPPED or (len(batch) < limit and end is not BatchEnd.FAILED):
                return  # a short batch: nothing else was due when it was claimed

    def _claim(self) -> tuple[list[states.Claimed] | None, int]:
        """Claim what may go now and reserve its requests under the endpoint's rate limit; return (batch, limit).

        The batch is None when it may not go now (given back: the subscription was
        paused or deleted meanwhile, or the pace asks for a wait too long for a thread).
        A batch claimed ahead (before the last request of the one before) is taken as it is.
        """
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            batch, limit, reservation = ahead.batch, ahead.limit, ahead.reservation
        else:
            (batch, limit), reservation = self._claim_gated(), None
        self._moments = None
        if batch and reservation is not None:
            self._reserved(reservation)
        elif batch and self._rate:
            batch = self._pace(batch)
        return batch, limit

    def _reserved(self, reservation: pacing.Reservation) -> None:
        """Take a granted reservation's schedule for the claimed batch."""
        self._moments, self._end, self._interval = reservation.moments, reservation.end, reservation.interval

    def _claim_ahead(self, batch: list[states.Claimed], limit: int) -> None:
        """Before the last request of a full paced batch, claim the next and reserve it if the pace grants it now.

        Only while the pace's schedule is about to end (pacing.pace_grantable): the next
        reservation then continues it with no gap. A batch of one leaves its next claim after
        it: an ordered endpoint's next delivery is not sendable before this one is recorded, Try
        now sends one, and below 10/s the interval (0.1 s) outlasts the claim. A reservation
        the pace does not grant at once is made after the request, as for any claim.
        """
        if self.once or len(batch) != limit or limit == 1 or not pacing.pace_grantable(self._end):
            return
        ahead, ahead_limit = self._claim_gated()
        reservation = None
        if ahead and self._rate:
            reservation = pacing.pace_reserve(subscription_id=self.subscription_id, rate=self._rate, count=len(ahead))
        self._ahead = _Ahead(ahead, ahead_limit, reservation if reservation and reservation.granted else None)

    def _give_back_ahead(self) -> None:
        """Give back the batch claimed ahead (this one ended otherwise). Its reservation stays spent: at most
        0.2 s of the endpoint's rate, after a failure or a pause."""
        if self._ahead is not None:
            states.deliveries_give_back(ids=self._ahead.ids)
            self._ahead = None

    def _pace(self, batch: list[states.Claimed]) -> list[states.Claimed] | None:
        """Reserve the batch's requests under the rate limit (delivery.pacing); return the batch, or None (given
        back, and the endpoint's next sender scheduled for when a reservation can be granted)."""
        while True:
            reservation = pacing.pace_reserve(subscription_id=self.subscription_id, rate=self._rate, count=len(batch))
            if reservation.granted:
                self._reserved(reservation)
                return batch
            if reservation.wait > pacing.WAIT_IN_THREAD:
                states.deliveries_give_back(ids=[d.id for d in batch])
                self._resume_in = reservation.wait
                return None
            time.sleep(reservation.wait)

    def _claim_gated(self) -> tuple[list[states.Claimed] | None, int]:
        """Claim what the breaker lets go now: a batch, the one probe, or test sends only; return (batch, limit).

        The claim reads the breaker's record with the deliveries (states.sendable lets
        through what gate() allows); a half-open breaker's extra deliveries are given
        back, keeping one as the probe. The batch is None when the subscription was
        paused or deleted meanwhile (its deliveries are then held or cancelled).
        """
        # An ordered endpoint has one sendable delivery at a time: a claim of one is a full batch, and the
        # sender claims the next at once rather than lingering as after a short batch.
        limit = 1 if self.once or self._ordered else pacing.batch_size(self._rate, most=BATCH_MAX)
        batch = states.deliveries_claim(subscription_id=self.subscription_id, until=self.until, limit=limit)
        if not batch:
            return batch, limit
        sending = snapshots.sending_of(batch[0].subscription)
        self._rate, self._ordered = pacing.pace_rate(sending), sending.ordered
        if not sending.sends:
            states.deliveries_give_back(ids=[d.id for d in batch])
            self._read()  # holds or cancels them
            return None, 0
        record = snapshots.record_of(batch[0].record, url=sending.url)
        self._record_clean = record is None or record.clean
        gate = health.gate(record, timezone.now())
        if gate is health.Gate.ALL:
            return batch, limit
        tests = [d for d in batch if d.is_test]
        keep = tests
        if gate is health.Gate.PROBE and health.probe_take(subscription_id=self.subscription_id, until=self.until):
            keep = tests + [next(d for d in batch if not d.is_test)] if len(tests) < len(batch) else tests
            if len(keep) == len(tests):
                health.probe_drop(subscription_id=self.subscription_id)  # nothing to probe with
        kept = {d.id for d in keep}
        states.deliveries_give_back(ids=[d.id for d in batch if d.id not in kept])
        return [d for d in batch if d.id in kept], len(keep) or limit

    def _send(self, batch: list[states.Claimed], limit: int) -> BatchEnd:
        """Send a claimed batch in order, recording as it goes; return how it ended."""
        unrecorded = _Unrecorded()
        for i, claimed in enumerate(batch):
            if self._moments:
                if i == len(batch) - 1:
                    self._claim_ahead(batch, limit)
                pacing.pace_wait_until(self._moments[i])
            self._ask_for_help(i, len(batch))
            rest = [d.id for d in batch[i:]]
            self._cover(rest)
            sent = self._send_one(claimed, first=i == 0, rest=rest)
            if sent is Skipped.FINISHED:
                continue
            if sent is Skipped.STOPPED:
                self._record(unrecorded.take())
                states.deliveries_give_back(ids=[d.id for d in batch[i:]])
                self._give_back_ahead()
                self._read()  # holds or cancels what is left
                return BatchEnd.STOPPED
            self.attempts += 1
            self.last_sent = sent
            unrecorded.add(sent)
            if not sent.response.ok:
                self._record(unrecorded.take())  # with the successes before it: the breaker counts in order
                states.deliveries_give_back(ids=[d.id for d in batch[i + 1:]])
                self._give_back_ahead()
                return BatchEnd.FAILED
            if unrecorded.due():
                self._record(unrecorded.take())
        self._record(unrecorded.take())
        return BatchEnd.SENT

    def _ask_for_help(self, index: int, size: int) -> None:
        """A backlog that answers: ask for one more sender (once per sender, each in turn, up to the endpoint's cap).

        A full batch means more is due; a second sender overlaps one's waits (the
        receiver, the database) with the other's work, fast endpoint or slow. Not for
        one that fails (a failure ends the batch, so index > 0 means the one before
        answered): a hanging endpoint gets no more threads than the one it holds.
        """
        if not self._helped and index > 0 and size == BATCH_MAX:
            wakeups.endpoint_help(self.subscription_id)
            self._helped = True

    def _cover(self, claimed_ids: list, *, timeout: float | None = None) -> None:
        """Renew slots, claims and the wake row if a request starting now could outlast the lease.

        `timeout`: the request's own, when it is longer than the one the leases covered
        so far (the endpoint's timeout was edited while this sender ran).
        """
        if timeout is not None and timeout > self.timeout:
            self.timeout = timeout
        elif not slots.needs_renewal(self.until, self.timeout):
            return
        self.until = slots.lease_until(self.timeout)
        ahead = self._ahead.ids if self._ahead is not None else []
        with transaction.atomic():
            slots.slots_renew(holder=self.holder, until=self.until)
            states.deliveries_extend(ids=claimed_ids + ahead, until=self.until)
        if not self.helper:
            wakeups.endpoint_keep_awake(self.subscription_id)

    def _send_one(self, claimed: states.Claimed, *, first: bool, rest: list) -> states.Sent | Skipped:
        """POST one claimed delivery as things are now; return what to record, or why it was not sent.

        `rest`: the ids of this delivery and the batch's after it (still claimed), for a lease to cover.
        """
        if first:  # the claim read the delivery and its subscription a moment ago
            state, sending = claimed.state, snapshots.sending_of(claimed.subscription)
        else:
            now = snapshots.delivery_snapshot(delivery_id=claimed.id)
            if now is None:
                return Skipped.STOPPED
            state, sending = now
        if not sending.sends:
            return Skipped.STOPPED
        if state != Delivery.State.PENDING:
            return Skipped.FINISHED
        if sending.timeout > self.timeout:
            self._cover(rest, timeout=sending.timeout)
        if self._moments:
            pacing.pace_wait_until(self._next_post)
            self._next_post = time.time() + self._interval
        started_at = timezone.now()
        headers, response = {}, None
        try:
            headers, response = self._post(claimed, sending)
        except CustomHeaderUnsendable as exc:  # its message names the header, never its value
            response = _failed(started_at, str(exc))
        except Exception as exc:  # noqa: BLE001 - whatever goes wrong is an attempt with an error, then a retry
            # A traceback could quote a secret header's value: only without secret headers does it reach the log.
            secret_headers = any(h.get("secret") for h in sending.custom_headers or [])
            logger.error("Sending delivery %s failed in the sender: %s", claimed.id, type(exc).__name__,
                         exc_info=not secret_headers)
            response = _failed(started_at, f"The sender failed while sending: {type(exc).__name__}.")
        if response.error_message:
            response = dataclasses.replace(response, error_message=secrets_scrubbed(
                response.error_message, stored=sending.custom_headers))
        shown = {**headers, **headers_shown(stored=sending.custom_headers)}  # never a secret header's value
        return states.Sent(claimed, _attempt(claimed, url=sending.url, started_at=started_at, headers=shown,
                                             response=response), response)

    def _decrypted(self, encrypted: str) -> str:
        if encrypted not in self._secrets:
            self._secrets[encrypted] = decrypt_secret(encrypted)
        return self._secrets[encrypted]

    def _post(self, claimed: states.Claimed, sending: snapshots.Sending) -> tuple[dict, transport.Response]:
        """Sign and POST the delivery's body; return (the headers sent, the answer)."""
        body = claimed.body.encode()
        try:
            # During a planned rotation the old secret signs too, until its time is up.
            also = ((self._decrypted(sending.previous_secret_encrypted),)
                    if sending.previous_secret_until and sending.previous_secret_until > timezone.now() else ())
            secret = self._decrypted(sending.secret_encrypted)
        except Exception:  # noqa: BLE001 - a secret that cannot be decrypted is recorded, not retried forever
            logger.exception("Cannot decrypt the signing secret of delivery %s", claimed.id)
            return {}, transport.Response(
                duration_ms=0, error_kind=Attempt.ErrorKind.OTHER,
                error_message="The signing secret cannot be decrypted (were the encryption keys changed?).")
        headers = {**headers_for_sending(stored=sending.custom_headers),
                   **signed_headers(secret=secret, msg_id=claimed.webhook_id, timestamp=int(time.time()), body=body,
                                    also=also)}
        return headers, transport.post(sending.url, body, headers, timeout=sending.timeout)

    # --- recording, then reporting -----------------------------------------------------------

    def _record(self, sent: list[states.Sent]) -> None:
        """Write the attempts, their deliveries' next states and the breaker's record in one transaction; report."""
        if not sent:
            return
        verdicts = []
        url = sent[-1].attempt.url
        with transaction.atomic():
            after = states.deliveries_record(sent=sent)
            if not self._record_clean and any(s.response.ok for s in sent):
                health.endpoint_clear(subscription_id=self.subscription_id)
                self._record_clean = True
            for s in sent:
                if s.response.ok:
                    continue
                slow = pacing.slow_down_seconds(s.response)
                if slow is not None:  # the receiver is up and asks the endpoint to wait: no failure for the breaker
                    until = pacing.endpoint_slow_down(subscription_id=self.subscription_id, seconds=slow)
                    self._resume_in = max(self._resume_in or 0.0, (until - timezone.now()).total_seconds())
                else:
                    verdicts.append(health.endpoint_failed(subscription_id=self.subscription_id, url=url,
                                                           attempt=s.attempt))
                    self._record_clean = False
        self._report(Recorded(sent, after, verdicts))

    def _report(self, recorded: Recorded) -> None:
        """Log and count each attempt by its delivery's real state; say if the breaker opened or a pause is due."""
        for s in recorded.sent:
            outcome = OUTCOMES.get(recorded.after.get(s.delivery.id), "other")
            response, attempt = s.response, s.attempt
            logger.info(
                "Attempt %d of %s to %s: %s in %d ms", attempt.number, s.delivery.webhook_id, attempt.url,
                f"HTTP {response.status_code}" if not response.error_kind else response.error_kind,
                response.duration_ms,
                extra={"event_id": s.delivery.webhook_id, "delivery_id": str(s.delivery.id),
                       "organisation": self.endpoint.organisation_id, "endpoint_host": transport.host_of(attempt.url),
                       "outcome": outcome, "duration_ms": response.duration_ms},
            )
            metrics.attempt_recorded(
                outcome=outcome,
                error_kind=metrics.error_kind_for(status_code=response.status_code, error_kind=response.error_kind),
                duration_ms=response.duration_ms)
        if any(recorded.after.get(s.delivery.id) == Delivery.State.FAILED for s in recorded.sent):
            signals.deliveries_failed_for_good.send(sender=Subscription, subscription_id=self.subscription_id)
        if not any(v.breaker_opened or v.pause_reason for v in recorded.verdicts):
            return
        subscription = Subscription.objects.get(id=self.subscription_id)
        failure = recorded.sent[-1].response
        for verdict in recorded.verdicts:
            if verdict.breaker_opened:
                signals.endpoint_failing.send(sender=Subscription, subscription=subscription,
                                              reason=states.summary(failure))
            if verdict.pause_reason and _pause(subscription, reason=verdict.pause_reason):
                signals.endpoint_auto_paused.send(sender=Subscription, subscription=subscription,
                                                  reason=verdict.pause_reason)


def _failed(started_at, message: str) -> transport.Response:
    """Return the answer recorded for an attempt that went wrong on our side, with its message."""
    return transport.Response(duration_ms=int((timezone.now() - started_at).total_seconds() * 1000),
                              error_kind=Attempt.ErrorKind.OTHER, error_message=message)


def _attempt(claimed: states.Claimed, *, url: str, started_at, headers: dict, response: transport.Response) -> Attempt:
    """Return the (unsaved) Attempt row of one HTTP try, with any bytes the receiver sent made storable."""
    body_text, escaped = body_for_storage(raw=response.body, truncated=response.truncated)
    return Attempt(
        delivery_id=claimed.id, number=claimed.attempt_count + 1, url=url, started_at=started_at,
        duration_ms=response.duration_ms,
        request_headers={"Content-Type": "application/json", "User-Agent": transport.USER_AGENT, **headers},
        status_code=response.status_code,
        response_headers=headers_for_storage(headers=response.headers),
        response_body=body_text, response_body_escaped=escaped, response_truncated=response.truncated,
        error_kind=response.error_kind, error_message=response.error_message,
    )


def _pause(subscription: Subscription, *, reason: str) -> bool:
    """Pause the subscription automatically; return False if it was no longer active."""
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().filter(
            id=subscription.id, state=Subscription.State.ACTIVE, deleted_at__isnull=True).first()
        if locked is None:
            return False
        subscription_pause(subscription=locked, reason=reason, automatic=True)
    logger.warning("Subscription %s paused automatically: %s", subscription.public_id, reason)
    return True
