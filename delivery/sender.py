"""The one sending path: claim an endpoint's due deliveries, check each, sign, POST, record.

Every delivery goes this way, whatever the store and whatever the case (a
backlog, a single event, a test send, the probe of an open breaker, a retry):
a batch of one is the same code as a batch of BATCH_MAX.

1. Take a slot of the endpoint and of its organisation (delivery.slots), or
   leave: the slots' holders look again when they let go.
2. Claim up to BATCH_MAX due deliveries (delivery.states), or one probe, or
   only test sends while the breaker is open (delivery.health).
3. For each, right before its POST: renew the lease if the request could
   outlive it, re-read the delivery and its subscription (a delete or pause
   that committed stops it; an edited URL and a regenerated secret apply), sign
   the exact bytes with the current secret, POST under the transport's hard
   deadline, record the attempt and its outcome in one transaction.
4. After a failure, give the rest of the batch back and claim again (the
   breaker decides what may go). A full batch that is slow to send asks for
   one more sender (HELPER_AFTER). When nothing is due: linger a moment for
   work that is about to commit, let go of the slots, then look once more.
"""

import logging
import time

from django.db import transaction
from django.utils import timezone

from delivery import health, metrics, signals, slots, states, transport, wakeups
from delivery.models import Attempt, Delivery, webhook_id_for
from delivery.recorded_answer import body_for_storage, headers_for_storage
from delivery.signing import signed_headers
from subscriptions.custom_headers import headers_for_sending, headers_shown
from subscriptions.models import Subscription
from subscriptions.services import subscription_pause
from subscriptions.signing_secrets import decrypt_secret

logger = logging.getLogger(__name__)

BATCH_MAX = 20
# A sender that finds nothing due waits this long for work about to commit (a caller
# recording events one after another), so that a steady stream costs one wake-up, not one per event.
LINGER = 0.02
LINGER_POLL = 0.005
# A full batch (a backlog) still sending after this long asks for one more sender: a fast endpoint's
# backlog goes best over one connection, a slow one's over up to ENDPOINT_SENDERS at once.
HELPER_AFTER = 0.25
# Successes are recorded together, at least this often (count, seconds); a failure at once, with them.
RECORD_EVERY = 10
RECORD_SECONDS = 0.1
_SKIPPED = object()  # a claimed delivery that finished meanwhile: nothing to send
# The outcome of an attempt in metrics and logs, by the delivery's state after it (else "failed").
_OUTCOMES = {Delivery.State.SUCCEEDED: "succeeded", Delivery.State.PENDING: "retrying"}


class _Lease:
    """How long this sender's slots and claimed deliveries are its own."""

    def __init__(self, holder: str):
        self.holder = holder
        self.until = slots.lease_until()

    def cover_one_request(self, *, subscription_id, claimed_ids) -> None:
        """Renew slots and claims if a request starting now could outlast them."""
        if not slots.needs_renewal(self.until):
            return
        self.until = slots.lease_until()
        with transaction.atomic():
            slots.slots_renew(holder=self.holder, until=self.until)
            states.deliveries_extend(ids=claimed_ids, until=self.until)
        wakeups.endpoint_hold(subscription_id)


def endpoint_send(*, subscription_id) -> int:
    """Send what is due to this endpoint while its caps allow; return how many attempts were made."""
    attempts = 0
    while True:
        subscription = Subscription.objects.filter(id=subscription_id).first()
        if subscription is None or not _wanted(subscription):
            wakeups.endpoint_release(subscription_id)
            return attempts
        lease = _Lease(slots.new_holder())
        scopes = [(slots.endpoint_scope(subscription.id), slots.ENDPOINT_SENDERS),
                  (slots.organisation_scope(subscription.organisation_id), slots.ORGANISATION_SENDERS)]
        if not slots.slots_take(scopes=scopes, holder=lease.holder, until=lease.until):
            # Every slot is held, and each holder looks again after letting go.
            wakeups.endpoint_release(subscription_id)
            return attempts
        try:
            attempts += _drain(subscription, lease)
        finally:
            slots.slots_release(holder=lease.holder)
        # The last look, after the wake row goes: what committed before is found here, the rest wakes itself.
        wakeups.endpoint_release(subscription_id)
        wakeups.endpoints_sweep(organisation_id=subscription.organisation_id, exclude=subscription_id)
        if not _has_work(subscription) or not wakeups.endpoint_claim(subscription_id):
            return attempts


def _wanted(subscription: Subscription) -> bool:
    """Return True if the subscription still sends; a deleted one's deliveries are cancelled, a paused one's held."""
    if subscription.is_deleted:
        states.deliveries_cancel(subscription_id=subscription.id)
        return False
    if not subscription.is_active:
        states.deliveries_hold(subscription_id=subscription.id)
        return False
    return True


def _has_work(subscription: Subscription) -> bool:
    """Return True if something of the endpoint may be sent now (an open breaker lets only test sends by)."""
    record = health.endpoint_health(subscription=subscription)
    now = timezone.now()
    blocked = record is not None and record.open_until is not None and (
        record.open_until > now or (record.probe_until is not None and record.probe_until > now))
    return states.has_due(subscription_id=subscription.id, tests_only=blocked)


def _claim(subscription: Subscription, lease: _Lease) -> list[Delivery]:
    """Claim what may go now: a batch, the one probe of a half-open breaker, or test sends only."""
    record = health.endpoint_health(subscription=subscription)
    claim = {"subscription_id": subscription.id, "until": lease.until}
    if record is None or record.open_until is None:
        return states.deliveries_claim(**claim, limit=BATCH_MAX)
    if record.open_until <= timezone.now() and health.probe_take(subscription=subscription, until=lease.until):
        probe = states.deliveries_claim(**claim, limit=1)
        if not probe:
            health.probe_drop(subscription=subscription)
        return probe
    return states.deliveries_claim(**claim, limit=BATCH_MAX, tests_only=True)


def _drain(subscription: Subscription, lease: _Lease) -> int:
    """Claim and send batches until nothing may go; return how many attempts were made."""
    attempts = 0
    lingered = 0.0
    helped = False
    while True:
        wakeups.endpoint_hold(subscription.id)
        batch = _claim(subscription, lease)
        if not batch:
            if lingered >= LINGER:
                return attempts
            time.sleep(LINGER_POLL)
            lingered += LINGER_POLL
            continue
        lingered = 0.0
        started = time.monotonic()
        unrecorded: list = []  # successes sent but not yet recorded (at most RECORD_EVERY, RECORD_SECONDS)
        for i, delivery in enumerate(batch):
            # A backlog that answers, slowly: ask for one more sender (each sender asks once, up to the
            # endpoint's cap). Not for one that fails (a failure ends the batch, so i > 0 means answers):
            # a hanging endpoint gets no more threads than the one it holds.
            if not helped and i > 0 and len(batch) == BATCH_MAX and time.monotonic() - started > HELPER_AFTER:
                wakeups.endpoint_help(subscription.id)
                helped = True
            rest = [d.id for d in batch[i:]]
            lease.cover_one_request(subscription_id=subscription.id, claimed_ids=rest)
            outcome = _send_one(subscription, delivery)
            if outcome is _SKIPPED:
                continue
            if outcome is None:  # deleted or paused meanwhile: the whole batch stops, this one included
                _record(subscription, unrecorded)
                states.deliveries_unclaim(ids=rest)
                _wanted(Subscription.objects.get(id=subscription.id))
                return attempts
            attempts += 1
            unrecorded.append(outcome)
            response = outcome[2]
            if not response.ok:
                _record(subscription, unrecorded)  # with the successes before it: the breaker counts in order
                states.deliveries_unclaim(ids=rest[1:])  # the breaker decides what goes next
                break
            if len(unrecorded) >= RECORD_EVERY or time.monotonic() - unrecorded[0][3] > RECORD_SECONDS:
                _record(subscription, unrecorded)
                unrecorded = []
        else:
            _record(subscription, unrecorded)


def _send_one(subscription: Subscription, delivery: Delivery):
    """POST one claimed delivery as things are now; return (delivery, attempt, response, when), to record.

    None: the subscription was deleted or paused meanwhile; _SKIPPED: the delivery finished meanwhile.

    The subscription object is updated with its current URL (an edit applies to the next request).
    """
    current = (Delivery.objects.filter(id=delivery.id)
               .values_list("state", "subscription__state", "subscription__deleted_at", "subscription__url",
                            "subscription__secret_encrypted", "subscription__previous_secret_encrypted",
                            "subscription__previous_secret_until", "subscription__custom_headers").first())
    if current is None:
        return None
    state, sub_state, deleted_at, url, secret_encrypted, previous_encrypted, previous_until, custom = current
    if deleted_at is not None or sub_state != Subscription.State.ACTIVE:
        return None
    if state != Delivery.State.PENDING:
        return _SKIPPED
    subscription.url = url
    body = delivery.event.body.encode()
    started_at = timezone.now()
    try:
        # During a planned rotation the old secret signs too, until its time is up.
        also = (decrypt_secret(previous_encrypted),) if previous_until and previous_until > started_at else ()
        headers = {**headers_for_sending(stored=custom),
                   **signed_headers(secret=decrypt_secret(secret_encrypted), msg_id=webhook_id_for(delivery.event_id),
                                    timestamp=int(time.time()), body=body, also=also)}
    except Exception:  # noqa: BLE001 - a secret that cannot be decrypted is recorded, not retried forever
        logger.exception("Cannot sign delivery %s", delivery.id)
        headers = {}
        response = transport.Response(
            duration_ms=0, error_kind="other",
            error_message="The signing secret cannot be decrypted (were the encryption keys changed?).")
    else:
        response = transport.post(url, body, headers)
    shown = {**headers, **headers_shown(stored=custom)}  # the attempt log never shows a secret header's value
    return delivery, _attempt(delivery, url=url, started_at=started_at, headers=shown, response=response), response, \
        time.monotonic()


def _attempt(delivery: Delivery, *, url: str, started_at, headers: dict, response: transport.Response) -> Attempt:
    """Return the (unsaved) Attempt row of one HTTP try, with any bytes the receiver sent made storable."""
    body_text, escaped = body_for_storage(raw=response.body, truncated=response.truncated)
    return Attempt(
        delivery_id=delivery.id, number=delivery.attempt_count + 1, url=url, started_at=started_at,
        duration_ms=response.duration_ms,
        request_headers={"Content-Type": "application/json", "User-Agent": transport.USER_AGENT, **headers},
        status_code=response.status_code,
        response_headers=headers_for_storage(headers=response.headers),
        response_body=body_text, response_body_escaped=escaped, response_truncated=response.truncated,
        error_kind=response.error_kind, error_message=response.error_message,
    )


def _record(subscription: Subscription, sent: list) -> None:
    """Write the attempts, their deliveries' next states and the endpoint's record in one transaction.

    Then log and count each attempt, and tell others if the breaker opened or the subscription
    must be paused. `sent` is what _send_one returned, in order; a failure, if any, is last.
    """
    if not sent:
        return
    with transaction.atomic():
        after = states.deliveries_record(sent=[(d, a, r) for d, a, r, _ in sent])
        verdicts = []
        if any(r.ok for _, _, r, _ in sent):
            verdicts.append(health.endpoint_record(subscription=subscription, succeeded=True, status_code=200))
        for _, _, response, _ in sent:
            if not response.ok:
                verdicts.append(health.endpoint_record(subscription=subscription, succeeded=False,
                                                       status_code=response.status_code))
    for delivery, attempt, response, _ in sent:
        outcome = _OUTCOMES.get(after.get(delivery.id), "failed")
        event_id = webhook_id_for(delivery.event_id)
        logger.info(
            "Attempt %d of %s to %s: %s in %d ms", attempt.number, event_id, attempt.url,
            f"HTTP {response.status_code}" if not response.error_kind else response.error_kind, response.duration_ms,
            extra={"event_id": event_id, "delivery_id": str(delivery.id), "organisation": subscription.organisation_id,
                   "endpoint_host": transport.host_of(attempt.url), "outcome": outcome,
                   "duration_ms": response.duration_ms},
        )
        metrics.attempt_recorded(
            outcome=outcome,
            error_kind=metrics.error_kind_for(status_code=response.status_code, error_kind=response.error_kind),
            duration_ms=response.duration_ms)
    failure = sent[-1][2] if not sent[-1][2].ok else None
    for verdict in verdicts:
        if verdict.breaker_opened:
            signals.endpoint_failing.send(sender=Subscription, subscription=subscription,
                                          reason=states.summary(failure))
        if verdict.pause_reason and _pause(subscription, reason=verdict.pause_reason):
            signals.endpoint_auto_paused.send(sender=Subscription, subscription=subscription,
                                              reason=verdict.pause_reason)


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
