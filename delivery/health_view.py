"""Reads for the operator: how each endpoint is doing, and what each waiting delivery waits for.

Read-only: the breaker, the slots and the state machine are owned by
delivery.health, delivery.slots and delivery.states; this module only
describes what they hold, in a fixed number of queries per page, whatever the
number of cards or log rows.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value, When
from django.utils import timezone

from delivery import health as breaker
from delivery import slots
from delivery.models import Delivery, EndpointPace, Event, SenderSlot
from subscriptions.models import Subscription, TrailEntry

HEALTHY = "healthy"
FAILING = "failing"
BREAKER_OPEN = "breaker_open"
PAUSED = "paused"
CAPPED = "capped"
NO_SUCCESS = "no_success"
# The health filter's choices and the health sort's order, worst first (CAPPED is a moment's state: not sorted by).
HEALTH_CHOICES = [(BREAKER_OPEN, "Breaker open"), (FAILING, "Failing"), (NO_SUCCESS, "No success yet"),
                  (PAUSED, "Paused"), (HEALTHY, "Healthy")]
BROKEN = (BREAKER_OPEN, FAILING)
_PAUSES = (TrailEntry.Action.PAUSED, TrailEntry.Action.AUTO_PAUSED)
LOST_WINDOW = timedelta(days=7)  # "N deliveries failed for good since T" looks back this far
# The banner counts at most this many (+ 1, to tell "more than"): every card and page reads it, and an
# endpoint down for a week can have millions; past a thousand the exact number changes nothing the
# operator does. The "Retry failed deliveries since" confirmation counts them exactly (to BULK_LIMIT).
LOST_COUNT_CAP = 1_000


def count_shown(count: int, *, more: bool) -> str:
    """Return a count that stopped at `count` as the pages say it: "7", "1,000", "More than 1,000"."""
    return f"More than {count:,}" if more else f"{count:,}"


@dataclass(frozen=True)
class Lost:
    """Deliveries that failed for good (every retry used), created within LOST_WINDOW, not sent again since."""

    count: int  # at most LOST_COUNT_CAP
    since: datetime  # the oldest one's created_at: "Retry failed deliveries since" this finds them all
    more: bool = False  # more than `count` of them: not counted further

    @property
    def shown(self) -> str:
        """Return how many, as the pages say it: "7", "1,000", "More than 1,000"."""
        return count_shown(self.count, more=self.more)


class _CountAtMost(Subquery):
    """COUNT(*) of a sliced subquery: the count of `qs[:n]`, which reads n rows at most."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) AS counted)"
    output_field = IntegerField()


def _health_rules() -> list[tuple[Q, str]]:
    """Return (condition on a Subscription row, status) pairs, the first that holds applies."""
    # A breaker record about an earlier URL does not count: the sender starts the new URL clean.
    record = Q(endpoint_health__url=F("url"), endpoint_health__consecutive_failures__gt=0)
    succeeded = Exists(Delivery.objects.filter(subscription=OuterRef("pk"), state=Delivery.State.SUCCEEDED))
    attempted = Exists(Delivery.objects.filter(subscription=OuterRef("pk"), attempt_count__gt=0))
    return [
        (~Q(state=Subscription.State.ACTIVE), PAUSED),
        (record & Q(endpoint_health__open_until__isnull=False), BREAKER_OPEN),
        (record, FAILING),
        (Q(attempted) & ~Q(succeeded), NO_SUCCESS),  # tried, never answered 2xx (also after a Resume's clean slate)
    ]


def health_status() -> Case:
    """Return the expression of a Subscription's health status (PAUSED, BREAKER_OPEN, FAILING, NO_SUCCESS, HEALTHY).

    The one rule: the list filters and sorts by it, and endpoint_health_view() reads it for each card and page.
    """
    return Case(*[When(condition, then=Value(status)) for condition, status in _health_rules()],
                default=Value(HEALTHY))


def health_rank(*, broken_only: bool = False) -> Case:
    """Return the expression of a Subscription's place in the health sort, worst first.

    With `broken_only`, a breaker open then failing, and the rest ranked alike (the list's default: broken first).
    """
    order = [status for status, _ in HEALTH_CHOICES]
    rank = {s: order.index(s) if s in BROKEN or not broken_only else len(BROKEN) for s in order}
    rules = [(c, s) for c, s in _health_rules() if not broken_only or s != NO_SUCCESS]  # ranked as healthy anyway
    return Case(*[When(condition, then=Value(rank[status])) for condition, status in rules],
                default=Value(rank[HEALTHY]), output_field=IntegerField())


@dataclass(frozen=True)
class EndpointHealthView:
    """What the card and the detail page say about an endpoint's health."""

    status: str  # health_status(), except CAPPED for a healthy one whose sender slots are all held
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    last_error: str = ""  # the last failed attempt's outcome: "HTTP 503" or the network error
    last_failed_at: datetime | None = None  # also when the breaker last opened (each failure while open re-opens it)
    next_probe_at: datetime | None = None  # the breaker's open_until
    gate: breaker.Gate = breaker.Gate.ALL  # what may go now (delivery.health.gate)
    paused_reason: str = ""  # set when paused automatically
    paused_by: str = ""  # the trail's actor of the pause, "" for the system or unknown
    paused_at: datetime | None = None
    lost: Lost | None = None
    senders_busy: int = 0
    senders_cap: int = 0
    organisation_busy: int = 0
    organisation_cap: int = 0

    @property
    def capped(self) -> bool:
        """True while every sender slot of the endpoint is held."""
        return self.senders_busy >= self.senders_cap > 0

    @property
    def organisation_capped(self) -> bool:
        return self.organisation_busy >= self.organisation_cap > 0

    @property
    def breaker_open(self) -> bool:
        return self.gate is not breaker.Gate.ALL

    @property
    def probe_due(self) -> bool:
        """The cool-down is over and no probe is in flight: the next sender sends one probe."""
        return self.gate is breaker.Gate.PROBE

    @property
    def probe_in_flight(self) -> bool:
        return self.gate is breaker.Gate.TESTS_ONLY and self.next_probe_at is not None and \
            self.next_probe_at <= self.seen_at

    seen_at: datetime | None = None  # when the view was read (the gate is about that moment)


def endpoint_health_view(*, subscriptions: list[Subscription], now: datetime | None = None) -> dict:
    """Return {subscription id: EndpointHealthView} in at most three queries, whatever the number of subscriptions.

    With it, what each lost: its deliveries that failed for good within LOST_WINDOW (Lost), in the first query.
    """
    if not subscriptions:
        return {}
    now = now or timezone.now()
    ids = [s.id for s in subscriptions]
    # What was lost, in the same query: a range of the failed deliveries' partial index (delivery_failed),
    # counted to LOST_COUNT_CAP + 1 at most, so that the page costs the same whatever the endpoint lost.
    failed = Delivery.objects.filter(subscription=OuterRef("pk"), state=Delivery.State.FAILED,
                                     created_at__gte=now - LOST_WINDOW).order_by()
    rows = (Subscription.objects.filter(id__in=ids).select_related("endpoint_health")
            .annotate(health=health_status(),
                      lost_count=_CountAtMost(failed.values("id")[:LOST_COUNT_CAP + 1]),
                      lost_since=Subquery(failed.order_by("created_at").values("created_at")[:1])))
    statuses, records, lost = {}, {}, {}
    for row in rows:
        statuses[row.id] = row.health
        if row.lost_count:
            lost[row.id] = Lost(count=min(row.lost_count, LOST_COUNT_CAP), since=row.lost_since,
                                more=row.lost_count > LOST_COUNT_CAP)
        record = getattr(row, "endpoint_health", None)
        if record is not None:
            records[row.id] = record

    endpoint_cap, organisation_cap = slots.ENDPOINT_SENDERS, slots.ORGANISATION_SENDERS
    scopes = {slots.endpoint_scope(i) for i in ids}
    org_scopes = {slots.organisation_scope(s.organisation_id) for s in subscriptions}
    busy = dict(
        SenderSlot.objects.filter(held_until__gt=now)
        .filter(Q(scope__in=scopes, number__lt=endpoint_cap) | Q(scope__in=org_scopes, number__lt=organisation_cap))
        .values("scope").annotate(n=Count("id")).order_by().values_list("scope", "n")
    )

    paused = [s.id for s in subscriptions if not s.is_active]
    pauses = {}
    if paused:
        last_pause = (TrailEntry.objects.filter(subscription_id=OuterRef("subscription_id"), action__in=_PAUSES)
                      .order_by("-at", "-id").values("id")[:1])
        pauses = {e.subscription_id: e for e in TrailEntry.objects.select_related("actor").filter(
            subscription_id__in=paused, action__in=_PAUSES, id=Subquery(last_pause))}

    views = {}
    for s in subscriptions:
        record = records.get(s.id)
        if record is not None and record.url != s.url:
            record = None  # about an earlier URL: the sender starts the new one clean
        pause = pauses.get(s.id)
        facts = {
            "lost": lost.get(s.id),
            "senders_busy": busy.get(slots.endpoint_scope(s.id), 0), "senders_cap": endpoint_cap,
            "organisation_busy": busy.get(slots.organisation_scope(s.organisation_id), 0),
            "organisation_cap": organisation_cap,
        }
        if record is not None and record.consecutive_failures:
            facts.update(
                consecutive_failures=record.consecutive_failures, failing_since=record.failing_since,
                last_error=record.last_error, last_failed_at=record.last_failed_at,
                next_probe_at=record.open_until, gate=breaker.gate(record, now), seen_at=now,
            )
        status = statuses.get(s.id, HEALTHY)
        if status == PAUSED:
            facts.update(paused_reason=s.paused_reason, paused_at=s.paused_at,
                         paused_by=pause.actor.get_username() if pause and pause.actor else "")
        elif status == HEALTHY and facts["senders_busy"] >= endpoint_cap:
            status = CAPPED
        views[s.id] = EndpointHealthView(status=status, **facts)
    return views


@dataclass(frozen=True)
class Wait:
    """What a waiting delivery waits for: `text`, then the time `at` (if any), then `after`."""

    text: str
    at: datetime | None = None
    after: str = ""


def _wait(delivery: Delivery, *, subscription: Subscription, health: EndpointHealthView, now: datetime,
          test_ids: set, slow_until: datetime | None, head: Delivery | None) -> Wait | None:
    if delivery.state == Delivery.State.HELD:
        return Wait("Held until Resume")
    if delivery.state != Delivery.State.PENDING:
        return None
    if delivery.locked_until is not None and delivery.locked_until > now:
        return Wait("Sending now")
    if not subscription.is_active:
        return Wait("Held until Resume")  # its sender holds it on its next look
    if head is not None and head.id != delivery.id and delivery.event_id not in test_ids:
        return Wait(f"Waiting for {head.event.webhook_id} to be delivered",
                    after=" (this webhook delivers in order)")
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return Wait("Waiting for its retry at" if delivery.attempt_count else "Scheduled for", delivery.next_attempt_at)
    if slow_until is not None and slow_until > now:
        return Wait("Waiting: the receiver asked us to slow down until", slow_until)
    if health.breaker_open and delivery.event_id not in test_ids:  # a test send passes an open breaker
        if health.probe_in_flight:
            return Wait("Waiting for the endpoint's breaker: a probe request is in flight")
        if health.next_probe_at > now:
            return Wait("Waiting for the endpoint's breaker: next probe at", health.next_probe_at)
        return Wait("Waiting for the endpoint's breaker: its probe is due now")
    if subscription.max_per_second:
        return Wait("Due now: waiting for its turn under the endpoint's rate limit",
                    after=f" (rate limit {subscription.max_per_second}/s)")
    if health.capped:
        return Wait("Due now: waiting for a free sender",
                    after=f" (all {health.senders_cap} of this endpoint's senders are busy)")
    if health.organisation_capped:
        return Wait("Due now: waiting for a free sender",
                    after=f" (all {health.organisation_cap} of the organisation's senders are busy)")
    return Wait("Due now: waiting for a free sender")


def delivery_waits(*, subscription: Subscription, deliveries: list[Delivery], health: EndpointHealthView,
                   now: datetime | None = None) -> dict[uuid.UUID, Wait]:
    """Return {delivery id: Wait} for the unfinished ones, in three queries at most (the test sends behind a breaker
    or of an ordered endpoint, the slow-down the receiver asked for when a delivery is due, the delivery an ordered
    endpoint sends next)."""
    now = now or timezone.now()
    due = any(d.state == Delivery.State.PENDING and (d.locked_until is None or d.locked_until <= now)
              and d.next_attempt_at is not None and d.next_attempt_at <= now for d in deliveries)
    slow_until = EndpointPace.objects.filter(subscription=subscription).values_list(
        "slow_until", flat=True).first() if due else None
    pending = any(d.state == Delivery.State.PENDING for d in deliveries)
    head = order_head(subscription=subscription) if subscription.ordered and pending else None
    test_ids: set = set()
    if health.breaker_open or subscription.ordered:
        blocked = [d.event_id for d in deliveries if d.state == Delivery.State.PENDING]
        if blocked:
            test_ids = set(Event.objects.filter(id__in=blocked, is_test=True).values_list("id", flat=True))
    waits = {}
    for d in deliveries:
        wait = _wait(d, subscription=subscription, health=health, now=now, test_ids=test_ids, slow_until=slow_until,
                     head=head)
        if wait is not None:
            waits[d.id] = wait
    return waits


def order_head(*, subscription: Subscription) -> Delivery | None:
    """Return the delivery an ordered endpoint sends next (its oldest unfinished one, test sends aside), or None
    (the same rule as delivery.states.in_order)."""
    return (Delivery.objects.filter(subscription=subscription, state__in=Delivery.UNFINISHED, event__is_test=False)
            .order_by("created_at", "id").select_related("event").first())


def order_moved_past(*, subscription: Subscription) -> Delivery | None:
    """Return the latest delivery an ordered endpoint moved past because it failed for good, or None.

    (Those recorded after it went on: the page says so.)
    """
    if not subscription.ordered:
        return None
    return (Delivery.objects.filter(subscription=subscription, state=Delivery.State.FAILED, event__is_test=False)
            .order_by("-created_at", "-id").select_related("event").first())
