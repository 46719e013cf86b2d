"""The Delivery state machine: every write of a delivery's state, and the retry rules.

    (new) --> pending --> succeeded
       \\        |  \\---> failed        (retry schedule exhausted)
        \\       |   \\--> cancelled     (subscription deleted)
         \\      v
          `--> held <--> pending      (pause / Resume; 410 Gone holds, then pauses)
    succeeded, failed, cancelled --> pending   (Redeliver, "Retry failed since")

A pending delivery is *due* when its `next_attempt_at` has passed and no
sender has *claimed* it (`locked_until` in the future): `due()` is that rule,
written once, for the sender's claim, its last look and the sweeper (with the
endpoint's breaker, a slow-down its receiver asked for, and the order of an
ordered endpoint: `sendable()`). Waiting
for an endpoint's slot, its open breaker, its rate limit or the end of a
slow-down its receiver asked for does not change a delivery and uses up no
retry: it stays due. Nothing outside this module writes `state`,
`next_attempt_at`, `locked_until`, `attempt_count`, `schedule_offset`,
`completed_at`, `last_status_code` or `last_error` (delivery/tests/test_architecture.py).

The sender's statements (claim, record, extend, give back) are compiled once
(delivery.compiled): they run for every delivery, and building them with the
ORM each time cost more than the rest of a delivery (docs/PERFORMANCE.md).
"""

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.db import models
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from delivery import health
from delivery.attempt_hours import attempt_hours_add
from delivery.compiled import Compiled, Insert, NewUUID, Param, params
from delivery.models import Attempt, Delivery, Event
from delivery.transport import Response
from subscriptions.models import Subscription

RETRY_JITTER = 0.1  # +/- 10 %, so retries of many deliveries do not arrive in lockstep
DELETED = "Cancelled: the subscription was deleted."

State = Delivery.State
_ID = Delivery._meta.pk
_TIME = models.DateTimeField()


# --- the one "due" rule ------------------------------------------------------------

def due(now) -> Q:
    """Return the filter of deliveries that are due and unclaimed at `now` (a datetime or a Param)."""
    return Q(state=State.PENDING, next_attempt_at__lte=now) & (Q(locked_until__isnull=True) | Q(locked_until__lt=now))


def sendable(now) -> Q:
    """Return the filter of deliveries that may go at `now`: due, let through by their endpoint's breaker
    (delivery.health.gate: anything unless it lets only test sends go), and not asked by their receiver to wait
    (a slow-down, delivery.pacing)."""
    return (due(now) & not_slowed(now) & in_order()
            & (health.gate_lets_deliveries("subscription__endpoint_health__", now) | Q(event__is_test=True)))


def in_order() -> Q:
    """Return the filter of deliveries that keep their endpoint's order: any of an endpoint that is not ordered,
    a test send, or the oldest unfinished delivery of an ordered one (recorded first; the id breaks a tie).

    While that one is claimed, retrying or held, no later one of its endpoint is sendable: one in
    flight at a time, in the order of recording. Once it succeeds or fails for good, the next goes.
    """
    earlier = Q(created_at__lt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id"))
    before_it = Delivery.objects.filter(earlier, subscription_id=OuterRef("subscription_id"),
                                        state__in=Delivery.UNFINISHED, event__is_test=False)
    return Q(subscription__ordered=False) | Q(event__is_test=True) | ~Exists(before_it)



def not_slowed(now) -> Q:
    """Return the filter of deliveries whose receiver has not asked us to wait past `now` (429, delivery.pacing)."""
    return (Q(subscription__endpoint_pace__slow_until__isnull=True)
            | Q(subscription__endpoint_pace__slow_until__lte=now))


# --- the retry rules -----------------------------------------------------------

def next_attempt_at(*, attempts_made: int, now: datetime, minimum_delay: float | None = None) -> datetime | None:
    """Return when attempt number attempts_made + 1 is due, or None when the schedule is exhausted.

    minimum_delay (from a Retry-After answer) pushes the retry later, never earlier.
    """
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    if attempts_made > len(schedule):
        return None
    delay = schedule[attempts_made - 1] * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
    if minimum_delay is not None:
        delay = max(delay, minimum_delay)
    return now + timedelta(seconds=delay)


def retry_after_cap() -> float:
    """Return the longest Retry-After we honour, in seconds: the longest interval of the retry schedule."""
    return float(max(settings.WEBHOOKS_RETRY_SCHEDULE, default=0))


def retry_after_seconds(response: Response, *, now: datetime | None = None, cap: float | None = None) -> float | None:
    """Return the Retry-After delay of a 429 or 503 answer in seconds (0 to `cap`, retry_after_cap() unless
    given), or None.

    RFC 9110 section 10.2.3: delay-seconds (digits only) or an HTTP-date. Anything
    else (a fraction, "inf", a sign, a date we cannot read) is ignored, so the
    schedule alone decides; a delay beyond the cap is cut to the cap.
    """
    if response.status_code not in (429, 503):
        return None
    value = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), "").strip()
    if not value:
        return None
    cap = retry_after_cap() if cap is None else cap
    if value.isascii() and value.isdigit():
        return min(float(int(value[:12])), cap)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return min(max((moment - (now or timezone.now())).total_seconds(), 0.0), cap)


def summary(response: Response) -> str:
    """Return the one-line outcome the log shows for an attempt ("" for a success)."""
    if response.error_kind:
        return response.error_message[:300]
    if response.ok:
        return ""
    return f"HTTP {response.status_code}"


def _after_failure(claimed: "Claimed", response: Response, *, number: int, now: datetime) -> dict:
    """Return the state fields of a pending delivery after a failed attempt: held (410 Gone), due again, or failed."""
    if response.status_code == 410:
        # The endpoint says it is gone: the subscription is paused next, and this
        # delivery is held with the rest, to be sent on Resume.
        return {"state": State.HELD, "next_attempt_at": None, "completed_at": None}
    due_at = next_attempt_at(attempts_made=number - claimed.schedule_offset, now=now,
                             minimum_delay=retry_after_seconds(response, now=now))
    if due_at is None:
        return {"state": State.FAILED, "next_attempt_at": None, "completed_at": now}
    return {"state": State.PENDING, "next_attempt_at": due_at, "completed_at": None}


# --- creation --------------------------------------------------------------------

def _targets(one: bool):
    """The subscriptions an event goes to: the organisation's that want its type, or the one of a test send."""
    if one:
        return Subscription.objects.filter(id=Param("subscription_id", Subscription._meta.pk))
    return Subscription.objects.filter(
        organisation_id=Param("organisation_id", Subscription._meta.get_field("organisation").target_field),
        deleted_at__isnull=True,
        activity_types__activity_type=Param("activity_type", models.CharField()))


_CREATED_COLUMNS = ("subscription", "state", "id", "event", "activity_type", "attempt_count", "schedule_offset",
                    "next_attempt_at", "last_error", "created_at")
# What the insert returns: the first columns, (subscription, state) per delivery. Returning every column
# cost the caller 0.2 ms at 10 subscriptions (two timestamps a row to parse) for values it already had.
_CREATED_RETURNS = 2


def _insert_deliveries(select_sql: str) -> str:
    from django.db import connection

    columns = ", ".join(connection.ops.quote_name(Delivery._meta.get_field(c).column) for c in _CREATED_COLUMNS)
    returned = ", ".join(connection.ops.quote_name(Delivery._meta.get_field(c).column)
                         for c in _CREATED_COLUMNS[:_CREATED_RETURNS])
    # The SELECT's columns come in _CREATED_COLUMNS order, so RETURNING its first ones converts with its converters.
    return (f"INSERT INTO {connection.ops.quote_name(Delivery._meta.db_table)} ({columns}) {select_sql} "
            f"RETURNING {returned}")


def _create(one: bool):
    active = Q(state=Subscription.State.ACTIVE)
    at = Param("created_at", _TIME)
    return _targets(one).annotate(
        d_id=NewUUID(),
        d_event=Param("event_id", Event._meta.pk),
        d_type=Param("activity_type_copy", models.CharField()),
        d_state=Case(When(active, then=Value(State.PENDING)), default=Value(State.HELD)),
        d_zero=Value(0), d_offset=Value(0),
        d_due=Case(When(active, then=at), default=None, output_field=_TIME),
        d_error=Value(""), d_created=at,
    ).values_list("id", "d_state", "d_id", "d_event", "d_type", "d_zero", "d_offset", "d_due", "d_error", "d_created")


_CREATE = {one: Compiled(lambda one=one: _create(one), wrap=_insert_deliveries, wrap_returns=_CREATED_RETURNS)
           for one in (False, True)}


def deliveries_create(*, event: Event, subscription_id=None) -> list[tuple]:
    """Insert one delivery of the event per subscription that wants it (or to `subscription_id`); return them.

    One statement whatever their number: INSERT ... SELECT over the matching
    subscriptions. Returns (subscription id, state) per delivery: pending and due
    now for an active subscription, held for a paused one (kept, never dropped).
    """
    rows = _CREATE[subscription_id is not None].run(
        event_id=event.id, organisation_id=event.organisation_id, activity_type=event.activity_type,
        activity_type_copy=event.activity_type, created_at=event.created_at, subscription_id=subscription_id)
    return rows


# --- a sender's claim ------------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    """A delivery a sender claimed: what it needs to send it, and its endpoint as the claim read it."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    body: str
    is_test: bool
    attempt_count: int
    schedule_offset: int
    state: str  # as the claim read it (pending, unless it was cancelled a moment after)
    subscription: tuple  # the subscription's sending fields at the claim (delivery.snapshots.SENDING)
    record: tuple  # the endpoint's breaker record at the claim (delivery.snapshots.RECORD; Nones: none)

    @property
    def webhook_id(self) -> str:
        return f"evt_{self.event_id.hex}"


def _claim_query(limit: int, tests_only: bool):
    """The UPDATE that claims: lock (SKIP LOCKED) and mark the oldest sendable deliveries, in one statement."""
    now = Param("now", _TIME)
    sendable_now = Delivery.objects.filter(sendable(now), subscription_id=Param("subscription_id", _ID))
    if tests_only:
        sendable_now = sendable_now.filter(event__is_test=True)
    oldest = (sendable_now.order_by("next_attempt_at", "created_at")
              .select_for_update(skip_locked=True, of=("self",)).values("id")[:limit])
    return Delivery.objects.filter(id__in=oldest), {"locked_until": Param("until", _TIME)}


def _claimed_query(n: int):
    """What the sender needs of the deliveries it claimed, with their endpoint as it is now, oldest first."""
    from delivery.snapshots import RECORD, SENDING

    return (Delivery.objects.filter(id__in=params("ids", _ID, n)).order_by("next_attempt_at", "created_at")
            .values_list("id", "event_id", "event__body", "event__is_test", "attempt_count", "schedule_offset",
                         "state", *(f"subscription__{name}" for name in SENDING),
                         *(f"subscription__endpoint_health__{name}" for name in RECORD)))


_CLAIM = Compiled(_claim_query, update=True, returning=("id",))
_CLAIMED = Compiled(_claimed_query)
_LEASE = Compiled(lambda n: (Delivery.objects.filter(id__in=params("ids", _ID, n), state=State.PENDING),
                             {"locked_until": Param("until", _TIME)}), update=True)
_GIVE_BACK = Compiled(lambda n: (Delivery.objects.filter(id__in=params("ids", _ID, n)), {"locked_until": None}),
                      update=True)


def deliveries_claim(*, subscription_id, until: datetime, limit: int, tests_only: bool = False) -> list[Claimed]:
    """Claim up to `limit` sendable deliveries of the endpoint until `until`, oldest due first; return them.

    Sendable: due, and let through by the breaker (an open one lets test sends
    only; a half-open one lets deliveries through too, and the caller keeps one
    of them as its probe, delivery.sender). One UPDATE claims them, its subquery
    skipping rows another sender is claiming (PostgreSQL: FOR UPDATE SKIP
    LOCKED; SQLite runs one writing statement at a time); a second statement
    reads what the sender needs of them. No transaction of its own: the UPDATE
    is atomic, and the rows are this sender's once it has run.
    `tests_only`: only test sends.
    """
    from delivery.snapshots import SENDING

    ids = [row[0] for row in _CLAIM.run((limit, tests_only), now=timezone.now(), until=until,
                                        subscription_id=subscription_id)]
    if not ids:
        return []
    split = 7 + len(SENDING)
    return [Claimed(id=r[0], subscription_id=subscription_id, event_id=r[1], body=r[2], is_test=r[3],
                    attempt_count=r[4], schedule_offset=r[5],
                    state=r[6], subscription=r[7:split], record=r[split:])
            for r in _CLAIMED.run((len(ids),), ids=ids)]


def deliveries_extend(*, ids: list, until: datetime) -> None:
    """Push the claim of these deliveries (still the caller's) to `until`."""
    if ids:
        _LEASE.run((len(ids),), ids=ids, until=until)


def deliveries_give_back(*, ids: list) -> None:
    """Give back claimed deliveries that were not sent: due as they were, for the next sender."""
    if ids:
        _GIVE_BACK.run((len(ids),), ids=ids)


_SENDABLE_ONE = Compiled(lambda tests_only: Delivery.objects.filter(
    sendable(Param("now", _TIME)), subscription_id=Param("subscription_id", _ID),
    **({"event__is_test": True} if tests_only else {})).values_list("id")[:1])


def has_sendable(*, subscription_id, tests_only: bool = False) -> bool:
    """Return True if a delivery of the endpoint (a test send, with tests_only) may go now (the last look)."""
    return bool(_SENDABLE_ONE.run((tests_only,), now=timezone.now(), subscription_id=subscription_id))


# --- the outcome of an attempt ------------------------------------------------------

@dataclass(frozen=True)
class Sent:
    """One attempt to record: the claimed delivery, its (unsaved) Attempt row, and the answer."""

    delivery: Claimed
    attempt: Attempt
    response: Response


_ATTEMPT_FIELDS = [f for f in Attempt._meta.concrete_fields if not f.primary_key]
_INSERT_ATTEMPTS = Compiled(lambda n: Insert(
    Attempt, [f.name for f in _ATTEMPT_FIELDS],
    [Attempt(**{f.attname: Param(f.attname, f, i) for f in _ATTEMPT_FIELDS}) for i in range(n)]))
_SUCCEED = Compiled(lambda n: (
    Delivery.objects.filter(id__in=params("ids", _ID, n), state=State.PENDING),
    {"state": State.SUCCEEDED, "completed_at": Param("now", _TIME), "next_attempt_at": None, "locked_until": None,
     "attempt_count": F("attempt_count") + 1, "last_status_code": Param("status", models.IntegerField()),
     "last_error": ""}), update=True)
_FAIL = Compiled(lambda: (
    Delivery.objects.filter(id=Param("id", _ID), state=State.PENDING),
    {"state": Param("state", models.CharField()), "next_attempt_at": Param("next_attempt_at", _TIME),
     "completed_at": Param("completed_at", _TIME), "locked_until": None,
     "attempt_count": Param("number", models.IntegerField()),
     "last_status_code": Param("status", models.IntegerField(null=True)),
     "last_error": Param("error", models.CharField())}), update=True)


def deliveries_record(*, sent: list[Sent]) -> dict:
    """Save the attempts and move their deliveries on, in the caller's transaction; return {delivery id: state}.

    The states returned are the deliveries' real states after the write. After an
    attempt a pending delivery is succeeded, pending again (a retry), failed (the
    schedule is spent) or held (410 Gone). Only a delivery still pending moves on:
    one cancelled or held while its request was in flight keeps that state (and is
    reported so), but still counts the attempt, so attempt numbers stay unique.
    One insert for the attempts, one upsert of the charts' hourly roll-up
    (delivery.attempt_hours), one update per status code of the successes, one
    update per failure (each has its own retry time).
    """
    now = timezone.now()
    values = {f.attname: [getattr(s.attempt, f.attname) for s in sent] for f in _ATTEMPT_FIELDS}
    _INSERT_ATTEMPTS.run((len(sent),), **values)
    attempt_hours_add((s.delivery.subscription_id, s.attempt.started_at, s.attempt.duration_ms,
                       s.attempt.status_code) for s in sent)
    after: dict = {}
    by_status: dict[int, list[Sent]] = {}
    for s in sent:
        if s.response.ok:
            by_status.setdefault(s.response.status_code, []).append(s)
    for status, group in by_status.items():
        ids = [s.delivery.id for s in group]
        moved = _SUCCEED.run((len(ids),), ids=ids, now=now, status=status)
        if moved == len(ids):
            after.update(dict.fromkeys(ids, State.SUCCEEDED))
        else:
            after.update(_count_unmoved(group, status=status, error=""))
    for s in sent:
        if s.response.ok:
            continue
        moved = _after_failure(s.delivery, s.response, number=s.attempt.number, now=now)
        if _FAIL.run(id=s.delivery.id, number=s.attempt.number, status=s.response.status_code,
                     error=summary(s.response), **moved):
            after[s.delivery.id] = moved["state"]
        else:
            after.update(_count_unmoved([s], status=s.response.status_code, error=summary(s.response)))
    return after


def _count_unmoved(group: list[Sent], *, status, error: str) -> dict:
    """Count the attempt on deliveries that were no longer pending (cancelled or held meanwhile); return their states.

    Those the update above moved already count this attempt (attempt_count == its number).
    """
    numbers = {s.delivery.id: s.attempt.number for s in group}
    current = dict(Delivery.objects.filter(id__in=numbers).values_list("id", "attempt_count"))
    unmoved = [i for i, count in current.items() if count < numbers[i]]
    for delivery_id in unmoved:
        Delivery.objects.filter(id=delivery_id).update(
            attempt_count=numbers[delivery_id], last_status_code=status, last_error=error, locked_until=None)
    return dict(Delivery.objects.filter(id__in=numbers).values_list("id", "state"))


def delivery_record(*, delivery: Claimed, attempt: Attempt, response: Response) -> str:
    """Record one attempt (deliveries_record with a batch of one); return the delivery's state after it."""
    return deliveries_record(sent=[Sent(delivery, attempt, response)])[delivery.id]


# --- operator and lifecycle transitions ---------------------------------------------

def delivery_hold(*, delivery_id) -> bool:
    """Hold one pending delivery (its subscription is paused); return True if it was pending."""
    return bool(Delivery.objects.filter(id=delivery_id, state=State.PENDING).update(
        state=State.HELD, next_attempt_at=None, locked_until=None))


def deliveries_hold(*, subscription_id) -> int:
    """Hold the subscription's pending deliveries that no sender has claimed (on pause); return how many.

    A claimed one is held by its sender before its POST, or after its attempt is recorded.
    """
    now = timezone.now()
    return Delivery.objects.filter(subscription_id=subscription_id, state=State.PENDING).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    ).update(state=State.HELD, next_attempt_at=None, locked_until=None)


def deliveries_resume(*, subscription_id) -> int:
    """Make the subscription's held deliveries due now (on Resume); return how many.

    All get the same due time; senders take them oldest first (created_at).
    """
    return Delivery.objects.filter(subscription_id=subscription_id, state=State.HELD).update(
        state=State.PENDING, next_attempt_at=timezone.now(), locked_until=None)


def deliveries_cancel(*, subscription_id, reason: str = DELETED) -> int:
    """Cancel every unfinished delivery of a subscription, claimed ones included; return how many."""
    return Delivery.objects.filter(subscription_id=subscription_id, state__in=Delivery.UNFINISHED).update(
        state=State.CANCELLED, next_attempt_at=None, locked_until=None, completed_at=timezone.now(),
        last_error=reason)


def _again(queryset, *, active: bool) -> int:
    """Send finished deliveries again with a fresh retry schedule and their event ids; return how many."""
    common = {"completed_at": None, "locked_until": None, "schedule_offset": F("attempt_count")}
    if active:
        return queryset.update(state=State.PENDING, next_attempt_at=timezone.now(), **common)
    return queryset.update(state=State.HELD, next_attempt_at=None, **common)


def delivery_redeliver(*, delivery: Delivery) -> bool:
    """Make a finished delivery of an active subscription due now; return False if it is unfinished."""
    return bool(_again(Delivery.objects.filter(id=delivery.id).exclude(state__in=Delivery.UNFINISHED), active=True))


def deliveries_recover(*, subscription: Subscription, since: datetime) -> int:
    """Send again every failed delivery of the subscription created since `since`; return how many.

    On a paused subscription they are held, to go on Resume.
    """
    failed = Delivery.objects.filter(subscription=subscription, state=State.FAILED, created_at__gte=since)
    return _again(failed, active=subscription.is_active)
