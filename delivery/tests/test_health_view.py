"""What the pages say about an endpoint's health and about each waiting delivery (delivery.health_view)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import make_subscription, make_user
from delivery import health, slots
from delivery.attempt_hours import attempt_hours_add
from delivery.health_view import (
    BREAKER_OPEN,
    CAPPED,
    FAILING,
    HEALTHY,
    NO_SUCCESS,
    PAUSED,
    delivery_waits,
    endpoint_health_view,
    health_rank,
    health_status,
)
from delivery.models import Attempt, Delivery, EndpointHealth, Event, SenderSlot
from subscriptions.models import Subscription
from subscriptions.services import subscription_pause, subscription_resume

pytestmark = pytest.mark.django_db


def deliver(subscription, *, state=Delivery.State.PENDING, attempts=0, next_attempt_at=None, locked_until=None,
            is_test=False, created_at=None):
    """Insert one delivery (and its event) as the state machine would have left it."""
    now = timezone.now()
    event = Event.objects.create(organisation=subscription.organisation, activity_type="lot.created", body="{}",
                                 created_at=created_at or now, is_test=is_test)
    return Delivery.objects.create(
        event=event, subscription=subscription, activity_type="lot.created", state=state, attempt_count=attempts,
        created_at=created_at or now, locked_until=locked_until,
        next_attempt_at=next_attempt_at if next_attempt_at is not None else (
            now if state == Delivery.State.PENDING else None))


def attempt(delivery, *, at, status_code=None, error_kind="", error_message="", duration_ms=50, number=None):
    """Insert one attempt, counted in the charts' roll-up as the sender counts it."""
    made = Attempt.objects.create(
        delivery=delivery, number=number or Attempt.objects.filter(delivery=delivery).count() + 1,
        url=delivery.subscription.url, started_at=at, duration_ms=duration_ms, status_code=status_code,
        error_kind=error_kind, error_message=error_message)
    attempt_hours_add([(delivery.subscription_id, at, duration_ms, status_code)])
    return made


def failing(subscription, *, failures, since, open_until=None, probe_until=None, url=None):
    """The endpoint's breaker record as the sender leaves it after `failures` failures since `since`, the last
    of them the subscription's latest attempt (health.endpoint_failed keeps it as the last failure)."""
    last = (Attempt.objects.filter(delivery__subscription=subscription, started_at__gte=since)
            .order_by("-started_at", "-id").first())
    return EndpointHealth.objects.create(subscription=subscription, url=url or subscription.url,
                                         consecutive_failures=failures, failing_since=since,
                                         open_until=open_until, probe_until=probe_until,
                                         last_error=health.failure_text(last) if last else "",
                                         last_failed_at=last.started_at if last else None)


def hold_slots(scope, count, *, until):
    SenderSlot.objects.bulk_create([SenderSlot(scope=scope, number=n, held_until=until, holder=uuid.uuid4().hex)
                                    for n in range(count)])


def test_an_endpoint_without_failures_is_healthy(org):
    subscription, _ = make_subscription(org)
    view = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    assert view.status == HEALTHY and view.consecutive_failures == 0 and view.last_error == ""
    assert view.senders_busy == 0 and view.senders_cap == slots.ENDPOINT_SENDERS
    assert endpoint_health_view(subscriptions=[]) == {}


def test_a_failing_endpoint_says_how_many_failures_since_when_and_the_last_error(org):
    subscription, _ = make_subscription(org)
    now = timezone.now()
    since = now - timedelta(minutes=30)
    d = deliver(subscription, attempts=2)
    attempt(d, at=since, status_code=500)
    last = attempt(d, at=now - timedelta(minutes=1), status_code=503)
    older = deliver(subscription, state=Delivery.State.SUCCEEDED, attempts=1)
    attempt(older, at=since - timedelta(hours=1), status_code=200)  # before the run of failures
    failing(subscription, failures=2, since=since)
    view = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    assert view.status == FAILING
    assert (view.consecutive_failures, view.failing_since) == (2, since)
    assert (view.last_error, view.last_failed_at) == ("HTTP 503", last.started_at)
    assert not view.breaker_open


def test_an_open_breaker_says_since_when_after_how_many_the_last_error_and_the_next_probe(org):
    subscription, _ = make_subscription(org)
    now = timezone.now()
    d = deliver(subscription, attempts=7)
    for minutes in range(7, 0, -1):
        last = attempt(d, at=now - timedelta(minutes=minutes), error_kind="connection",
                       error_message="Connection refused by 203.0.113.7:443")
    failing(subscription, failures=7, since=now - timedelta(minutes=7), open_until=now + timedelta(minutes=2))
    view = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    assert view.status == BREAKER_OPEN and view.breaker_open
    assert view.consecutive_failures == 7
    assert view.last_error == "Connection refused by 203.0.113.7:443"
    assert view.last_failed_at == last.started_at  # when it (re)opened
    assert view.next_probe_at == now + timedelta(minutes=2)
    assert not view.probe_due and not view.probe_in_flight


def test_after_the_cool_down_the_probe_is_due_or_in_flight(org):
    subscription, _ = make_subscription(org)
    now = timezone.now()
    record = failing(subscription, failures=5, since=now - timedelta(hours=1), open_until=now - timedelta(seconds=1))
    view = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    assert view.status == BREAKER_OPEN and view.probe_due and not view.probe_in_flight
    EndpointHealth.objects.filter(pk=record.pk).update(probe_until=now + timedelta(seconds=20))
    assert endpoint_health_view(subscriptions=[subscription])[subscription.id].probe_in_flight


def test_a_record_about_an_earlier_url_is_not_this_endpoints_health(org):
    subscription, _ = make_subscription(org)
    now = timezone.now()
    failing(subscription, failures=9, since=now, open_until=now + timedelta(minutes=5),
            url="https://old.example.com/in")
    assert endpoint_health_view(subscriptions=[subscription])[subscription.id].status == HEALTHY
    assert EndpointHealth.objects.get(subscription=subscription).consecutive_failures == 9  # read only


def test_a_paused_endpoint_says_who_paused_it_or_why(org):
    alice = make_user("alice", org)
    by_hand, _ = make_subscription(org, url="https://a.example.com/in")
    automatic, _ = make_subscription(org, url="https://b.example.com/in")
    subscription_pause(subscription=by_hand, by=alice)
    subscription_pause(subscription=automatic, reason="The endpoint answered 410 Gone.", automatic=True)
    views = endpoint_health_view(subscriptions=[by_hand, automatic])
    assert views[by_hand.id].status == PAUSED and views[by_hand.id].paused_by == "alice"
    assert views[by_hand.id].paused_reason == "" and views[by_hand.id].paused_at == by_hand.paused_at
    assert views[automatic.id].status == PAUSED and views[automatic.id].paused_by == ""
    assert views[automatic.id].paused_reason == "The endpoint answered 410 Gone."


def test_an_endpoint_whose_every_sender_slot_is_held_is_capped(org):
    subscription, _ = make_subscription(org)
    now = timezone.now()
    scope = slots.endpoint_scope(subscription.id)
    hold_slots(scope, slots.ENDPOINT_SENDERS - 1, until=now + timedelta(seconds=30))
    SenderSlot.objects.create(scope=scope, number=slots.ENDPOINT_SENDERS - 1, held_until=now - timedelta(seconds=1))
    view = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    assert view.status == HEALTHY and view.senders_busy == slots.ENDPOINT_SENDERS - 1  # an expired lease is free
    SenderSlot.objects.filter(scope=scope, number=slots.ENDPOINT_SENDERS - 1).update(
        held_until=now + timedelta(seconds=30))
    view = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    assert view.status == CAPPED and view.capped and view.senders_busy == slots.ENDPOINT_SENDERS


def test_health_of_a_page_of_cards_costs_a_fixed_number_of_queries(org, django_assert_max_num_queries):
    now = timezone.now()
    subs = [make_subscription(org, url=f"https://n{i}.example.com/in")[0] for i in range(12)]
    for i, s in enumerate(subs[:8]):
        d = deliver(s, attempts=1)
        attempt(d, at=now, status_code=500)
        failing(s, failures=i + 1, since=now - timedelta(minutes=1),
                open_until=now + timedelta(minutes=1) if i % 2 else None)
    for s in subs[8:]:
        subscription_pause(subscription=s, by=None)
        s.refresh_from_db()
    with django_assert_max_num_queries(4):
        views = endpoint_health_view(subscriptions=subs)
    assert {v.status for v in views.values()} == {FAILING, BREAKER_OPEN, PAUSED}
    assert all(views[s.id].last_error == "HTTP 500" for s in subs[:8])


def test_an_endpoint_that_never_succeeded_says_no_success_yet_also_after_resume(org):
    """Bad state: seven deliveries that used up every retry, the breaker cleared by Resume, no success ever."""
    subscription, _ = make_subscription(org)
    assert endpoint_health_view(subscriptions=[subscription])[subscription.id].status == HEALTHY  # nothing tried
    now = timezone.now()
    for _ in range(7):
        attempt(deliver(subscription, state=Delivery.State.FAILED, attempts=1), at=now, status_code=500)
    failing(subscription, failures=7, since=now - timedelta(hours=1), open_until=now + timedelta(minutes=5))
    assert endpoint_health_view(subscriptions=[subscription])[subscription.id].status == BREAKER_OPEN
    subscription_pause(subscription=subscription, by=None)
    subscription_resume(subscription=subscription)
    assert EndpointHealth.objects.get(subscription=subscription).consecutive_failures == 0  # Resume: a clean slate
    assert endpoint_health_view(subscriptions=[subscription])[subscription.id].status == NO_SUCCESS
    deliver(subscription, state=Delivery.State.SUCCEEDED, attempts=1)
    assert endpoint_health_view(subscriptions=[subscription])[subscription.id].status == HEALTHY


def test_the_health_expression_filters_and_ranks_worst_first(org):
    """The list's filter and sort read the same rule as the cards: one webhook in each health."""
    now = timezone.now()
    made = {name: make_subscription(org, url=f"https://{name}.example.com/in")[0]
            for name in ("healthy", "paused", "failing", "open", "nosuccess", "oldurl")}
    failing(made["failing"], failures=2, since=now)
    failing(made["open"], failures=5, since=now, open_until=now + timedelta(minutes=1))
    failing(made["oldurl"], failures=9, since=now, open_until=now + timedelta(minutes=1), url="https://was.example.com/")
    deliver(made["nosuccess"], state=Delivery.State.FAILED, attempts=7)
    deliver(made["healthy"], state=Delivery.State.SUCCEEDED, attempts=1)
    subscription_pause(subscription=made["paused"], by=None)
    qs = Subscription.objects.filter(organisation=org)
    statuses = dict(qs.annotate(h=health_status()).values_list("url", "h"))
    assert statuses == {"https://healthy.example.com/in": HEALTHY, "https://paused.example.com/in": PAUSED,
                        "https://failing.example.com/in": FAILING, "https://open.example.com/in": BREAKER_OPEN,
                        "https://nosuccess.example.com/in": NO_SUCCESS, "https://oldurl.example.com/in": HEALTHY}
    views = endpoint_health_view(subscriptions=list(qs))
    assert {s.url: views[s.id].status for s in qs} == statuses
    worst = [s.url.split("/")[2].split(".")[0] for s in qs.annotate(r=health_rank()).order_by("r", "url")]
    assert worst == ["open", "failing", "nosuccess", "paused", "healthy", "oldurl"]
    broken_first = qs.annotate(r=health_rank(broken_only=True)).order_by("r", "url").values_list("url", "r")
    assert list(broken_first)[:3] == [("https://open.example.com/in", 0), ("https://failing.example.com/in", 1),
                                      ("https://healthy.example.com/in", 2)]
    assert {r for _, r in list(broken_first)[2:]} == {2}  # the rest alike, in the list's own order


# --- what a waiting delivery waits for ------------------------------------------

def waits_for(subscription, deliveries):
    health = endpoint_health_view(subscriptions=[subscription])[subscription.id]
    return delivery_waits(subscription=subscription, deliveries=deliveries, health=health)


def test_each_unfinished_delivery_says_what_it_waits_for(org):
    subscription, _ = make_subscription(org)
    now = timezone.now()
    retry_at = now + timedelta(minutes=5)
    retrying = deliver(subscription, attempts=2, next_attempt_at=retry_at)
    sending = deliver(subscription, locked_until=now + timedelta(seconds=20))
    due = deliver(subscription)
    done = deliver(subscription, state=Delivery.State.SUCCEEDED, attempts=1)
    waits = waits_for(subscription, [retrying, sending, due, done])
    assert (waits[retrying.id].text, waits[retrying.id].at) == ("Waiting for its retry at", retry_at)
    assert waits[sending.id].text == "Sending now"
    assert (waits[due.id].text, waits[due.id].after) == ("Due now: waiting for a free sender", "")
    assert done.id not in waits


def test_behind_an_open_breaker_deliveries_wait_for_the_probe_but_a_test_send_does_not(org):
    subscription, _ = make_subscription(org)
    now = timezone.now()
    probe_at = now + timedelta(minutes=2)
    failing(subscription, failures=5, since=now - timedelta(minutes=5), open_until=probe_at)
    blocked = deliver(subscription)
    test_send = deliver(subscription, is_test=True)
    retrying = deliver(subscription, attempts=1, next_attempt_at=now + timedelta(minutes=10))
    waits = waits_for(subscription, [blocked, test_send, retrying])
    assert (waits[blocked.id].text, waits[blocked.id].at) == ("Waiting for the endpoint's breaker: next probe at",
                                                              probe_at)
    assert waits[test_send.id].text == "Due now: waiting for a free sender"
    assert waits[retrying.id].text == "Waiting for its retry at"
    EndpointHealth.objects.filter(subscription=subscription).update(open_until=now - timedelta(seconds=1))
    due_probe = waits_for(subscription, [blocked])[blocked.id]
    assert due_probe.text == "Waiting for the endpoint's breaker: its probe is due now"


def test_a_due_delivery_of_a_capped_endpoint_says_every_sender_is_busy(org):
    subscription, _ = make_subscription(org)
    hold_slots(slots.endpoint_scope(subscription.id), slots.ENDPOINT_SENDERS,
               until=timezone.now() + timedelta(seconds=30))
    due = deliver(subscription)
    wait = waits_for(subscription, [due])[due.id]
    assert wait.text == "Due now: waiting for a free sender"
    assert wait.after == f" (all {slots.ENDPOINT_SENDERS} of this endpoint's senders are busy)"


def test_a_held_delivery_waits_for_resume(org):
    subscription, _ = make_subscription(org)
    subscription_pause(subscription=subscription)
    held = deliver(subscription, state=Delivery.State.HELD)
    assert waits_for(subscription, [held])[held.id].text == "Held until Resume"


def test_what_was_lost_is_counted_to_the_cap_and_then_said_to_be_more(org, monkeypatch):
    """Bad state: more failed deliveries than the banner counts (the cap set to 2 to keep it small)."""
    monkeypatch.setattr("delivery.health_view.LOST_COUNT_CAP", 2)
    now = timezone.now()
    subs = [make_subscription(org, url=f"https://lost{n}.example.com/in")[0] for n in range(4)]
    for n, s in enumerate(subs):
        for k in range(n):
            deliver(s, state=Delivery.State.FAILED, attempts=8, created_at=now - timedelta(hours=k + 1))
    views = endpoint_health_view(subscriptions=subs, now=now)
    assert views[subs[0].id].lost is None
    assert [(views[s.id].lost.count, views[s.id].lost.more, views[s.id].lost.shown) for s in subs[1:]] == [
        (1, False, "1"), (2, False, "2"), (2, True, "More than 2")]
    assert views[subs[3].id].lost.since == Delivery.objects.filter(subscription=subs[3]).order_by(
        "created_at").first().created_at  # the oldest, also past the cap
