"""Reads of the delivery side: the delivery log and the numbers on a webhook's card.

The log is keyset-paginated on (created_at, id), newest first, which the
`delivery_log` index (subscription, -created_at, -id) serves directly: every
page costs one index range scan, however deep, and nothing counts the table.
"""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from delivery.models import Delivery, Event
from subscriptions.models import Subscription

PAGE_SIZE = 50
EVENTS_PAGE_SIZE = 25
SUCCESS_WINDOW = timedelta(hours=24)


class InvalidCursor(ValueError):
    """A page link (`?before=`) that is not one of ours, or points outside the dates a database can store."""


@dataclass(frozen=True)
class LogPage:
    deliveries: list[Delivery]
    older_cursor: str | None  # None on the last page
    has_unfinished: bool  # the page is worth refreshing while this is true
    # Why the cursor asked for was not used (the page is then the first one), for the page to say; else "".
    cursor_error: str = ""


@dataclass(frozen=True)
class CardStats:
    last_delivery: Delivery | None
    success_rate: int | None  # percent of deliveries attempted in the window that succeeded
    attempted: int  # deliveries attempted in the window
    held: int  # deliveries held while paused


def cursor_encode(delivery: Delivery | Event) -> str:
    """Return an opaque cursor pointing just past this delivery (or event: the same keys)."""
    raw = f"{delivery.created_at.isoformat()}|{delivery.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """Return (created_at in UTC, id) from a cursor, or None when there is none; raise InvalidCursor for a bad one.

    A date is taken only if it is a moment with a zone whose UTC time a database can store: the
    first or last day of the calendar in a far zone (9999-12-31T23:59:59-14:00) is not one.
    """
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, hex_id = raw.partition("|")
        at = datetime.fromisoformat(stamp)
        delivery_id = uuid.UUID(hex=hex_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("This page link is not one of the Delivery Log's.") from None
    if at.tzinfo is None:
        raise InvalidCursor("This page link has a date without a time zone.")
    try:
        return at.astimezone(UTC), delivery_id
    except OverflowError:
        raise InvalidCursor("This page link points outside the dates the Delivery Log holds.") from None


def delivery_log_queryset(
    *, subscription: Subscription, state: str | None = None, activity_type: str | None = None,
    before: tuple[datetime, uuid.UUID] | None = None, event_id: uuid.UUID | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> QuerySet[Delivery]:
    """Return the subscription's deliveries, newest first, older than `before`, filtered.

    `since` is inclusive and `until` exclusive; both bound the same index scan as the cursor.
    """
    qs = Delivery.objects.filter(subscription=subscription)
    if event_id is not None:
        qs = qs.filter(event_id=event_id)  # the event foreign key's own index finds it at any depth
    if state:
        qs = qs.filter(state=state)
    # The body and payload stay in Event: a log row needs none of them.
    return _newest_first(qs, activity_type=activity_type, since=since, until=until, before=before)


def _newest_first(qs: QuerySet, *, activity_type: str | None, since: datetime | None, until: datetime | None,
                  before: tuple[datetime, uuid.UUID] | None) -> QuerySet:
    """Return qs (deliveries or events) of that type, in [since, until), older than `before`, newest first."""
    if activity_type:
        qs = qs.filter(activity_type=activity_type)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if before is not None:
        at, last_id = before
        # The plain bound lets the index scan start at the cursor; the OR breaks ties on id.
        qs = qs.filter(created_at__lte=at).filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=last_id))
    return qs.order_by("-created_at", "-id")


def delivery_log(
    *, subscription: Subscription, state: str | None = None, activity_type: str | None = None,
    cursor: str | None = None, limit: int = PAGE_SIZE, event_id: uuid.UUID | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> LogPage:
    """Return one page of the delivery log (one query) and the cursor of the next, older page.

    A cursor that cannot be used gives the first page, with cursor_error saying why.
    """
    if state not in Delivery.State.values:
        state = None
    try:
        before, cursor_error = cursor_decode(cursor), ""
    except InvalidCursor as exc:
        before, cursor_error = None, f"{exc} Showing the newest deliveries."
    rows = list(
        delivery_log_queryset(subscription=subscription, state=state, activity_type=activity_type or None,
                              before=before, event_id=event_id, since=since,
                              until=until)[: limit + 1]
    )
    older = cursor_encode(rows[limit - 1]) if len(rows) > limit else None
    rows = rows[:limit]
    return LogPage(deliveries=rows, older_cursor=older, has_unfinished=any(not d.is_finished for d in rows),
                   cursor_error=cursor_error)


def deliveries_count(qs: QuerySet[Delivery], *, limit: int | None = None) -> int:
    """Return how many rows qs has, counting at most `limit` + 1 of them when a limit is given."""
    if limit is not None:
        qs = qs[: limit + 1]
    return qs.count()


def deliveries_failed_since_count(*, subscription: Subscription, since: datetime, limit: int | None = None) -> int:
    """Return how many failed deliveries "Retry failed deliveries since" would send again (at most `limit` + 1)."""
    return deliveries_count(Delivery.objects.filter(subscription=subscription, state=Delivery.State.FAILED,
                                                    created_at__gte=since), limit=limit)


def deliveries_unfinished_count(*, subscription: Subscription) -> int:
    """Return how many deliveries Delete would cancel (pending or held)."""
    return Delivery.objects.filter(subscription=subscription, state__in=Delivery.UNFINISHED).count()


def event_get(*, organisation, event_id: uuid.UUID) -> Event | None:
    """Return the organisation's event with that id, or None (never another organisation's)."""
    return Event.objects.filter(organisation=organisation, id=event_id).first()


def event_deliveries(*, event: Event) -> list[Delivery]:
    """Return the event's deliveries to the organisation's live webhooks, oldest first."""
    return list(Delivery.objects.filter(event=event, subscription__deleted_at__isnull=True)
                .order_by("created_at", "id"))


def delivery_get(*, subscription: Subscription, delivery_id) -> Delivery | None:
    """Return the subscription's delivery with that id and its event, or None (never another's)."""
    return Delivery.objects.select_related("event").filter(subscription=subscription, id=delivery_id).first()


def subscription_card_stats(*, subscriptions: list[Subscription], now: datetime | None = None) -> dict:
    """Return {subscription id: CardStats} in at most four queries, whatever the number of cards."""
    ids = [s.id for s in subscriptions]
    if not ids:
        return {}
    now = now or timezone.now()
    latest = Delivery.objects.filter(subscription=OuterRef("pk")).order_by("-created_at", "-id").values("id")[:1]
    last_ids = dict(
        Subscription.objects.filter(id__in=ids).annotate(last=Subquery(latest)).values_list("id", "last")
    )
    last = {d.subscription_id: d for d in Delivery.objects.filter(id__in=[v for v in last_ids.values() if v])}
    window = {
        row["subscription_id"]: row
        for row in Delivery.objects.filter(subscription_id__in=ids, created_at__gte=now - SUCCESS_WINDOW,
                                           attempt_count__gt=0)
        .values("subscription_id")
        .annotate(total=Count("id"), ok=Count("id", filter=Q(state=Delivery.State.SUCCEEDED)))
        .order_by()
    }
    paused = [s.id for s in subscriptions if not s.is_active]
    held = dict(
        Delivery.objects.filter(subscription_id__in=paused, state=Delivery.State.HELD)
        .values("subscription_id").annotate(n=Count("id")).order_by().values_list("subscription_id", "n")
    ) if paused else {}
    stats = {}
    for sid in ids:
        row = window.get(sid)
        total = row["total"] if row else 0
        # Rounded down: 100 % only when every attempted delivery succeeded.
        rate = 100 * row["ok"] // total if total else None
        stats[sid] = CardStats(last_delivery=last.get(sid), success_rate=rate, attempted=total, held=held.get(sid, 0))
    return stats


@dataclass(frozen=True)
class EventPage:
    events: list  # Event rows (without their body), newest first, each with `.deliveries_shown`
    older_cursor: str | None  # None on the last page
    cursor_error: str = ""


def event_log(
    *, organisation, event_id: uuid.UUID | None = None, activity_type: str | None = None,
    since: datetime | None = None, until: datetime | None = None, cursor: str | None = None,
    limit: int = EVENTS_PAGE_SIZE,
) -> EventPage:
    """Return one page of the organisation's events, newest first, each with its deliveries to every webhook.

    Two queries whatever the page holds: the events, then their deliveries with their webhooks (deleted
    ones included: their deliveries happened). `since` is inclusive, `until` exclusive.
    """
    try:
        before, cursor_error = cursor_decode(cursor), ""
    except InvalidCursor as exc:
        before, cursor_error = None, f"{exc} Showing the newest events."
    qs = Event.objects.filter(organisation=organisation).defer("body")
    if event_id is not None:
        qs = qs.filter(id=event_id)
    qs = _newest_first(qs, activity_type=activity_type, since=since, until=until, before=before)
    rows = list(qs[: limit + 1])
    older = cursor_encode(rows[limit - 1]) if len(rows) > limit else None
    events = rows[:limit]
    shown: dict = {e.id: [] for e in events}
    if events:
        for d in (Delivery.objects.filter(event_id__in=list(shown)).select_related("subscription")
                  .order_by("subscription__url", "subscription_id")):
            shown[d.event_id].append(d)
    for e in events:
        e.deliveries_shown = shown[e.id]
    return EventPage(events=events, older_cursor=older, cursor_error=cursor_error)
