"""Pacing an endpoint to its receiver's rate limit, across every thread, process and machine.

A subscription may ask for at most `max_per_second` requests a second. The
limit is a GCRA (generic cell rate algorithm) kept in the database, one
EndpointPace row per limited endpoint: `tat`, the theoretical arrival time,
is when the endpoint's next request may go at its rate. A sender that claimed
k deliveries reserves k requests with ONE conditional UPDATE: it moves tat to
max(tat, now) + k/rate only if tat is at most BURST ahead of now, and gets
back where its reservation ends. The k requests then go at their own moments,
1/rate apart (the sender waits for each in its thread: at most one interval,
never longer than WAIT_IN_THREAD for a batch, delivery.sender). Reservations
of every sender follow one another on the one row, so the requests of an
endpoint are never closer together than 1/rate, whatever the number of senders.

There is no tolerance for a late batch: a reservation made after the schedule
ran out starts now, not in the past, so at most limit + 1 requests fall in any
one second. A sender draining a backlog therefore claims and reserves its next
batch before the last request of the current one (when that reservation would
be granted: `pace_grantable`), so the schedule goes on without a gap; claimed
after that request (answer, record, claim), each batch of 0.2 s would lose
some 20 ms, a tenth of the rate.

A moment is the earliest a request may leave, not when it does: the read and
the signing before it, or a busy machine, can make one late. The sender keeps
its own requests at least 1/rate apart as they leave (a late one pushes the
next, `pace_wait_until` on the last one's time plus an interval), and as it
stops, moves the endpoint's schedule to one interval after its last request if
that is later (`pace_push`), so a late request is never followed closely by
the next on time, by this sender or the one after it.

A receiver that answers 429 (with or without Retry-After), or 503 with
Retry-After, asks the whole endpoint to slow down: `endpoint_slow_down` records
until when (Retry-After, at most SLOW_DOWN_MAX; SLOW_DOWN_DEFAULT when absent)
on the same row. Nothing goes to the endpoint before then (delivery.states.
sendable leaves its deliveries out), and after it the pace ramps up again: 1
request a second, doubling every second, up to the limit (or, for an endpoint
without one, up to RAMP_TOP, where it is unpaced again). The breaker does not
count such an answer as a failure: the receiver is up, and busy.

A refused reservation says how long until the next one can be granted: a short
wait is waited in the thread; a longer one gives the claimed deliveries back,
frees the thread and schedules the endpoint's next sender (delivery.wakeups.
endpoint_resume_in). Waiting uses no retry and is no failure: the deliveries
stay due. An endpoint without a limit never reads or writes a row here (the
sender knows from the subscription it read with its claim).
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from delivery import states
from delivery.compiled import Compiled, Insert, Param
from delivery.models import EndpointPace
from delivery.transport import Response
from subscriptions.models import RATE_MAX

# A paced sender claims about this many seconds of its rate at once (at least one delivery).
BATCH_SECONDS = 0.2
# A reservation may start at most this far ahead; a sender waits this long at most in its thread.
BURST = 0.05
WAIT_IN_THREAD = BURST
# A receiver that asks us to slow down: at most this long (seconds), and this long when it does not say.
SLOW_DOWN_MAX = 3600.0
SLOW_DOWN_DEFAULT = 30.0
# After a slow-down the pace ramps from 1 request a second, doubling each second, up to the limit or this.
RAMP_TOP = RATE_MAX
_FLOAT = models.FloatField()
_ID = EndpointPace._meta.pk


def batch_size(rate: int | None, *, most: int) -> int:
    """Return how many deliveries a sender claims at once: `most` without a limit, about BATCH_SECONDS of the rate."""
    if not rate:
        return most
    return max(1, min(most, int(rate * BATCH_SECONDS)))


@dataclass(frozen=True)
class Reservation:
    """What a reservation came to: the moments (unix seconds) of its requests, or how long until one is granted."""

    moments: list[float]
    wait: float = 0.0
    end: float = 0.0  # when the endpoint's next request may go after this reservation's (its tat)
    interval: float = 0.0  # 1/rate of the reservation: no two of the endpoint's requests leave closer than this

    @property
    def granted(self) -> bool:
        return bool(self.moments)


_TAKE = Compiled(lambda: (
    EndpointPace.objects.filter(subscription_id=Param("id", _ID), tat__lte=Param("latest", _FLOAT)),
    {"tat": Greatest(F("tat"), Param("now", _FLOAT)) + Param("cost", _FLOAT)}), update=True, returning=("tat",))
_READ = Compiled(lambda: EndpointPace.objects.filter(subscription_id=Param("id", _ID)).values_list("tat"))
_CREATE = Compiled(lambda: Insert(EndpointPace, ["subscription", "tat"],
                                  [EndpointPace(subscription_id=Param("id", _ID), tat=Param("now", _FLOAT))],
                                  ignore_conflicts=True))


def pace_reserve(*, subscription_id, rate: int, count: int) -> Reservation:
    """Reserve `count` requests to the endpoint at `rate` a second; return their moments, or the wait before a retry.

    One UPDATE when granted (the usual case while a backlog drains); a refusal reads
    the row to say how long to wait; an endpoint's first reservation creates its row.
    """
    interval = 1.0 / rate
    for _ in range(2):
        now = time.time()
        rows = _TAKE.run(id=subscription_id, now=now, latest=now + BURST, cost=count * interval)
        if rows:
            start = rows[0][0] - count * interval
            return Reservation([start + i * interval for i in range(count)], end=rows[0][0], interval=interval)
        current = _READ.run(id=subscription_id)
        if current:
            return Reservation([], wait=max(current[0][0] - BURST - now, 0.001))
        _CREATE.run(id=subscription_id, now=now)
    return Reservation([], wait=WAIT_IN_THREAD)  # created by another sender meanwhile and taken at once: soon


def pace_grantable(end: float) -> bool:
    """Return True if a reservation made now would be granted, the schedule ending at `end` (a reservation's)."""
    return end <= time.time() + BURST


_PUSH = Compiled(lambda: (
    EndpointPace.objects.filter(subscription_id=Param("id", _ID), tat__lt=Param("to", _FLOAT)),
    {"tat": Param("to", _FLOAT)}), update=True)


def pace_push(*, subscription_id, to: float) -> None:
    """Let the endpoint's next request go no earlier than `to` (unix seconds): its schedule moves there if it
    ends sooner. A sender whose requests left later than their moments calls it as it stops (delivery.sender)."""
    _PUSH.run(id=subscription_id, to=to)


def pace_wait_until(moment: float) -> None:
    """Wait in this thread until `moment` (unix seconds) of a granted reservation (at most one interval)."""
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def pace_rate(sending) -> float | None:
    """Return the rate (requests a second) the endpoint is paced to now, or None: no pace (no limit, no ramp).

    `sending` is the subscription as the sender read it (delivery.snapshots.Sending):
    its limit, and the end of a slow-down its receiver asked for, after which the
    pace ramps up from 1 a second, doubling each second.
    """
    limit = sending.max_per_second
    if sending.slow_until is not None:
        ramp = 2.0 ** min(max((timezone.now() - sending.slow_until).total_seconds(), 0.0), 32.0)
        if ramp < (limit or RAMP_TOP):
            return ramp
    return limit


def slow_down_seconds(response: Response) -> float | None:
    """Return how long the receiver asks the whole endpoint to wait (429; 503 with Retry-After), or None.

    Retry-After as RFC 9110 reads it (delivery.states.retry_after_seconds), at most
    SLOW_DOWN_MAX; a 429 without one: SLOW_DOWN_DEFAULT.
    """
    if response.status_code not in (429, 503):
        return None
    # Its own cap: the retry schedule's (a delivery's next attempt) is another matter.
    after = states.retry_after_seconds(response, cap=SLOW_DOWN_MAX)
    if after is None:
        return SLOW_DOWN_DEFAULT if response.status_code == 429 else None
    return after


def endpoint_slow_down(*, subscription_id, seconds: float) -> datetime:
    """Send nothing to the endpoint for `seconds` from now (a later moment already asked for stays); return until when.

    Its pace's schedule moves there too, so a reservation already on its way waits as well.
    """
    until = timezone.now() + timedelta(seconds=seconds)
    EndpointPace.objects.bulk_create([EndpointPace(subscription_id=subscription_id, tat=until.timestamp(),
                                                   slow_until=until)], ignore_conflicts=True)
    EndpointPace.objects.filter(Q(slow_until__isnull=True) | Q(slow_until__lt=until),
                                subscription_id=subscription_id).update(
        slow_until=until, tat=Greatest(F("tat"), Value(until.timestamp())))
    return until

