"""Pause holds, resume releases, delete cancels, 410 pauses, Retry-After, redeliver, idempotency.

In-process against the real HTTPS receiver: each test calls the services a
worker would call and asserts on what the receiver got.
"""

import threading
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.db import connection, transaction
from django.utils import timezone

from conftest import make_subscription, send_now
from delivery.models import Attempt, Delivery, Event
from delivery.selectors import subscription_card_stats
from delivery.services import delivery_redeliver
from delivery.states import retry_after_seconds
from delivery.tasks import deliver, send_endpoint
from delivery.transport import Response
from subscriptions.activity import record_activity
from subscriptions.models import Subscription, TrailEntry
from subscriptions.services import (
    subscription_delete,
    subscription_pause,
    subscription_resume,
    subscription_update,
)

pytestmark = pytest.mark.django_db


def _record(org, n=1, **kwargs):
    return [record_activity(organisation=org, activity_type="lot.created", data={"n": i}, **kwargs) for i in range(n)]


def _make_due(delivery):
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now(), locked_until=None)


def _states(subscription):
    deliveries = Delivery.objects.filter(subscription=subscription).order_by("created_at")
    return list(deliveries.values_list("state", flat=True))


# --- pause holds, resume sends oldest first ---------------------------------------------

def test_paused_subscription_holds_events_and_resume_sends_them_oldest_first(
    org, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    subscription, _ = make_subscription(org, url=receiver.url)
    subscription_pause(subscription=subscription)
    events = _record(org, 3)

    assert _states(subscription) == ["held"] * 3
    for delivery in Delivery.objects.all():
        assert send_now(delivery.id) is None
    assert receiver.received == []
    assert subscription_card_stats(subscriptions=[subscription])[subscription.id].held == 3

    woken = []
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: woken.extend(ids))
    with django_capture_on_commit_callbacks(execute=True):
        assert subscription_resume(subscription=subscription) == 3
    assert woken == [subscription.id]
    send_endpoint(str(subscription.id))

    assert [r.headers["webhook-id"] for r in receiver.received] == [e.webhook_id for e in events]
    assert _states(subscription) == ["succeeded"] * 3


def test_pause_also_holds_a_retry_waiting_for_its_turn(org, receiver):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.script.append(500)
    _record(org)
    delivery = Delivery.objects.get()
    send_now(delivery.id)  # fails: a retry is scheduled
    assert _states(subscription) == ["pending"]

    subscription_pause(subscription=subscription)

    assert _states(subscription) == ["held"]
    _make_due(delivery)
    assert send_now(delivery.id) is None
    assert len(receiver.received) == 1


# --- delete cancels, even for a task already queued or running ------------------------

def test_delete_cancels_pending_retrying_and_held_and_a_queued_task_sends_nothing(org, receiver):
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.script.append(500)
    _record(org)
    retrying = Delivery.objects.get()
    send_now(retrying.id)
    _record(org)  # recorded after the first attempt: still pending
    pending = Delivery.objects.exclude(id=retrying.id).get()
    assert len(receiver.received) == 1

    assert subscription_delete(subscription=subscription) == 2

    # The tasks for both were already queued: the worker runs them now.
    for delivery in (retrying, pending):
        _make_due(delivery)
        deliver(str(delivery.id))
    assert len(receiver.received) == 1
    assert _states(subscription) == ["cancelled", "cancelled"]
    assert Delivery.objects.filter(last_error__icontains="deleted").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_worker_waiting_on_the_row_lock_sends_nothing_once_the_delete_commits(org, receiver, monkeypatch):
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: 0)  # no worker here: the test sends
    subscription, _ = make_subscription(org, url=receiver.url)
    _record(org)
    delivery = Delivery.objects.get()
    outcome = {}

    def worker():
        try:
            outcome["attempt"] = send_now(delivery.id)
        finally:
            connection.close()

    with transaction.atomic():  # the delete, not committed yet: it holds the delivery's row lock
        subscription_delete(subscription=subscription)
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(1.0)  # PostgreSQL: the claim skips the locked row; SQLite: it waits for the write lock
    thread.join(30)

    assert outcome == {"attempt": None}
    assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.CANCELLED


# --- 410 Gone pauses at once -----------------------------------------------------------

def test_410_gone_pauses_at_once_with_the_reason_and_resume_delivers_what_was_held(
    org, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    subscription, _ = make_subscription(org, url=receiver.url)
    gone_event, later_event = _record(org, 2)
    receiver.script.append(410)  # bad input: the endpoint says it no longer exists
    gone = Delivery.objects.get(event=gone_event)

    send_now(gone.id)

    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.PAUSED
    assert "410 Gone" in subscription.paused_reason
    entry = TrailEntry.objects.filter(subscription=subscription).first()
    assert entry.action == TrailEntry.Action.AUTO_PAUSED and entry.actor is None and "410" in entry.detail
    assert _states(subscription) == ["held", "held"]

    woken = []
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: woken.extend(ids))
    with django_capture_on_commit_callbacks(execute=True):
        assert subscription_resume(subscription=subscription) == 2
    assert woken == [subscription.id]
    send_endpoint(str(subscription.id))
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids == [gone_event.webhook_id, gone_event.webhook_id, later_event.webhook_id]
    assert _states(subscription) == ["succeeded", "succeeded"]


# --- Retry-After -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "120", 120.0),
        (503, "0", 0.0),
        (503, "-5", None),  # bad input: negative seconds are not delay-seconds (RFC 9110): ignored
        (503, "soon", None),  # bad input: neither seconds nor a date
        (503, "", None),  # bad input: empty
        (500, "120", None),  # only 429 and 503 are honoured
        (200, "120", None),
    ],
)
def test_retry_after_seconds(status, header, expected):
    response = Response(duration_ms=1, status_code=status, headers={"Retry-After": header})
    assert retry_after_seconds(response) == expected


def test_retry_after_as_an_http_date_and_in_any_header_case():
    at = timezone.now() + timedelta(seconds=90)
    response = Response(duration_ms=1, status_code=429, headers={"retry-after": format_datetime(at, usegmt=True)})
    assert 80 < retry_after_seconds(response) <= 90


def test_a_503_with_retry_after_is_retried_no_sooner_than_asked(org, receiver):
    from delivery.tests.receiver import answer

    make_subscription(org, url=receiver.url)
    receiver.script.append(lambda h: answer(h, 503, b"busy", {"Retry-After": "600"}))
    _record(org)
    delivery = Delivery.objects.get()

    send_now(delivery.id)

    delivery.refresh_from_db()
    # The schedule says about 5 s; the receiver asked for 600.
    assert (delivery.next_attempt_at - timezone.now()).total_seconds() > 590
    assert delivery.state == Delivery.State.PENDING and delivery.last_status_code == 503


# --- redeliver ---------------------------------------------------------------------------

def test_redeliver_sends_the_same_event_id_again_with_a_fresh_schedule(
    org, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    make_subscription(org, url=receiver.url)
    (event,) = _record(org)
    delivery = Delivery.objects.get()
    send_now(delivery.id)
    assert delivery_redeliver(delivery=Delivery.objects.get(id=delivery.id)) is True
    assert delivery_redeliver(delivery=delivery) is False  # already pending again: not twice

    send_now(delivery.id)

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.webhook_id
    assert first.body == second.body
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SUCCEEDED and delivery.schedule_offset == 1
    assert list(Attempt.objects.filter(delivery=delivery).values_list("number", flat=True)) == [1, 2]
    (entry,) = TrailEntry.objects.filter(action=TrailEntry.Action.REDELIVERED)  # one entry: the second call did nothing
    assert entry.detail == event.webhook_id


# --- idempotency keys --------------------------------------------------------------------

def test_an_idempotency_key_makes_a_retried_call_record_one_event(org, other_org, receiver):
    make_subscription(org, url=receiver.url)
    first = record_activity(organisation=org, activity_type="lot.created", data={"lot": 1}, idempotency_key="op-7")
    again = record_activity(organisation=org, activity_type="lot.created", data={"lot": 1}, idempotency_key="op-7")
    elsewhere = record_activity(organisation=other_org, activity_type="lot.created", data={}, idempotency_key="op-7")

    assert again.id == first.id
    assert elsewhere.id != first.id  # keys are per organisation
    assert Event.objects.filter(organisation=org).count() == 1
    (delivery,) = Delivery.objects.filter(subscription__organisation=org)
    send_now(delivery.id)
    assert [r.headers["webhook-id"] for r in receiver.received] == [first.webhook_id]


def test_without_a_key_two_calls_are_two_events(org):
    make_subscription(org)
    a = record_activity(organisation=org, activity_type="lot.created", data={})
    b = record_activity(organisation=org, activity_type="lot.created", data={})
    assert a.id != b.id and Delivery.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_delete_committed_while_a_task_is_sending_stops_what_it_has_not_sent_yet(org, receiver, monkeypatch):
    """Through the task, as the worker runs it: whatever path it takes, each POST is checked just before."""
    import time

    from delivery.tests.receiver import answer

    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: 0)  # no worker here: the test sends
    subscription, _ = make_subscription(org, url=receiver.url)
    _record(org, 8)
    first = Delivery.objects.order_by("created_at").first()

    def slow(handler):
        time.sleep(0.3)
        answer(handler, 200)

    receiver.default = slow
    thread = threading.Thread(target=lambda: (deliver(str(first.id)), connection.close()))
    thread.start()
    receiver.wait_for(1)
    subscription_delete(subscription=subscription)
    thread.join(30)

    # At most the request in flight when the delete committed went out after it.
    sent = len(receiver.received)
    assert sent <= 2, (
        f"{sent} of 8 requests went out after the delete: a sender must read each delivery and its subscription "
        "right before its POST (delivery.sender._send_one)"
    )
    assert Delivery.objects.filter(state=Delivery.State.CANCELLED).count() >= 8 - sent


@pytest.mark.django_db(transaction=True)
def test_a_sender_that_looks_again_reads_the_subscription_afresh(org, receiver, monkeypatch):
    """A URL edited while a batch is in flight applies to what the same sender finds on its next look."""
    import time

    from delivery.tests.receiver import answer

    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: 0)  # no worker here: the test sends
    subscription, _ = make_subscription(org, url=receiver.url)
    (first,) = _record(org)

    def slow(handler):
        time.sleep(0.5)
        answer(handler, 200)

    receiver.script = [slow]
    delivery_id = str(Delivery.objects.get(event=first).id)
    thread = threading.Thread(target=lambda: (deliver(delivery_id), connection.close()))
    thread.start()
    receiver.wait_for(1)  # the first POST is in flight: edit the URL, then record one more event
    subscription_update(subscription=subscription, url=receiver.url + "-moved", activity_types=["lot.created"])
    (second,) = _record(org)
    thread.join(30)

    paths = {r.json["id"]: r.path for r in receiver.received}
    assert paths == {first.webhook_id: "/hooks", second.webhook_id: "/hooks-moved"}
