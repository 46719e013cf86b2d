"""The sender's own rules (delivery.sender), through the production task and a real HTTPS receiver.

Each test records events in their own transactions, as callers do, then runs
the worker's task in-process (the message a worker would consume) and checks
what the receiver got and what the Delivery Log says. The spies only watch the
sender's calls (their arguments and results pass through unchanged).
"""

import logging
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import make_subscription
from delivery import health, metrics, sender, states, transport, wakeups
from delivery.models import Attempt, Delivery, EndpointWake
from delivery.tasks import send_endpoint
from subscriptions.activity import record_activity
from subscriptions.services import subscription_delete, subscription_pause

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Return the endpoint ids of the messages the sender and the callers publish (none reaches a broker)."""
    published = []
    monkeypatch.setattr(wakeups, "_publish", lambda subscription_id, helper=False: published.append(
        ("helper" if helper else "holder", str(subscription_id))) or True)
    return published


def _record(org, n=1):
    return [record_activity(organisation=org, activity_type="lot.created", data={"n": i}) for i in range(n)]


def _spy(monkeypatch, module, name):
    """Replace module.name by a pass-through that logs each call's keyword arguments and result."""
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append((kwargs, result))
        return result

    monkeypatch.setattr(module, name, spy)
    return calls


def _ids(received):
    return [r.headers["webhook-id"] for r in received]


# --- batches -------------------------------------------------------------------------------

def test_a_batch_of_one_goes_the_same_way_as_a_full_batch(org, receiver, monkeypatch):
    subscription, _ = make_subscription(org, url=receiver.url)
    claims = _spy(monkeypatch, states, "deliveries_claim")
    (event,) = _record(org)

    assert send_endpoint(str(subscription.id)) == 1

    # One claim (asked for up to BATCH_MAX) that found it: a short batch, so nothing else was due.
    assert [(kw["limit"], len(result)) for kw, result in claims] == [(sender.BATCH_MAX, 1)]
    assert _ids(receiver.received) == [event.webhook_id]
    assert Delivery.objects.get().state == Delivery.State.SUCCEEDED

    claims.clear()
    receiver.received.clear()
    events = _record(org, sender.BATCH_MAX * 2 + 5)
    assert send_endpoint(str(subscription.id)) == len(events)
    assert [len(result) for _, result in claims] == [sender.BATCH_MAX, sender.BATCH_MAX, 5]
    assert _ids(receiver.received) == [e.webhook_id for e in events]  # oldest first


def test_the_linger_picks_up_an_event_committed_during_it_without_a_second_message(org, receiver, monkeypatch,
                                                                                   no_broker):
    subscription, _ = make_subscription(org, url=receiver.url)
    (first,) = _record(org)
    no_broker.clear()
    late = []
    real_sleep = sender.time.sleep

    def sleep_while_a_caller_commits(seconds):
        if seconds == sender.LINGER and not late:
            # Another caller commits while the sender lingers, in its own thread and transaction.
            thread = threading.Thread(target=lambda: (late.extend(_record(org)), connection.close()))
            thread.start()
            thread.join()
        real_sleep(seconds)

    monkeypatch.setattr(sender.time, "sleep", sleep_while_a_caller_commits)

    assert send_endpoint(str(subscription.id)) == 2

    assert _ids(receiver.received) == [first.webhook_id, late[0].webhook_id]
    assert no_broker == []  # the late caller found the endpoint awake: no message, no second wake-up


def test_a_helper_is_asked_for_only_by_a_full_batch_that_answers(org, receiver, no_broker):
    subscription, _ = make_subscription(org, url=receiver.url)
    short = _record(org, sender.BATCH_MAX - 1)
    no_broker.clear()
    assert send_endpoint(str(subscription.id)) == len(short)
    assert no_broker == []  # not a full batch: no backlog, no helper

    _record(org, sender.BATCH_MAX)
    no_broker.clear()
    assert send_endpoint(str(subscription.id)) == sender.BATCH_MAX
    assert no_broker == [("helper", str(subscription.id))]  # once, however long the batch

    receiver.default = 503  # bad input: the endpoint fails
    _record(org, sender.BATCH_MAX)
    no_broker.clear()
    # Each failure ends its batch at its first delivery; the breaker lets that go on until it opens.
    assert send_endpoint(str(subscription.id)) == health.BREAKER_THRESHOLD
    assert no_broker == []  # a failing endpoint gets no second thread


def test_a_helper_that_finds_the_slots_taken_leaves_the_wake_row_to_its_holder(org, receiver, monkeypatch):
    monkeypatch.setattr(sender.slots, "ENDPOINT_SENDERS", 1)
    subscription, _ = make_subscription(org, url=receiver.url)
    _record(org)
    assert EndpointWake.objects.filter(subscription=subscription).exists()  # the caller made it awake
    holder = sender.Sender(subscription.id)
    assert holder._start()  # the holder runs, and holds the endpoint's one slot

    assert send_endpoint(str(subscription.id), helper=True) == 0  # refused: no slot

    wake = EndpointWake.objects.get(subscription=subscription)
    assert wake.waiting is False  # the holder's row, untouched
    holder._drain()
    holder._stop()
    assert not holder._look_again(linger=True)  # nothing more: the holder lets go of the endpoint
    assert not EndpointWake.objects.filter(subscription=subscription).exists()
    assert len(receiver.received) == 1


# --- recording ------------------------------------------------------------------------------

def test_successes_are_recorded_every_record_every_deliveries(org, receiver, monkeypatch):
    monkeypatch.setattr(sender, "RECORD_SECONDS", 3600.0)
    monkeypatch.setattr(sender, "RECORD_EVERY", 10)  # below BATCH_MAX, so a batch makes more than one record
    subscription, _ = make_subscription(org, url=receiver.url)
    records = _spy(monkeypatch, states, "deliveries_record")
    _record(org, 25)

    send_endpoint(str(subscription.id))

    # Batches of BATCH_MAX (20) then 5; within each, RECORD_EVERY (here 10) at a time, the rest at the batch's end.
    assert [len(kw["sent"]) for kw, _ in records] == [10, 10, 5]
    assert Attempt.objects.count() == 25 and Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == 25


def test_a_full_batchs_successes_are_one_record_at_the_default_record_every(org, receiver, monkeypatch):
    monkeypatch.setattr(sender, "RECORD_SECONDS", 3600.0)
    subscription, _ = make_subscription(org, url=receiver.url)
    records = _spy(monkeypatch, states, "deliveries_record")
    _record(org, 25)

    send_endpoint(str(subscription.id))

    assert sender.RECORD_EVERY >= sender.BATCH_MAX
    assert [len(kw["sent"]) for kw, _ in records] == [20, 5]
    assert len(receiver.received) == 25 and Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == 25


def test_successes_are_recorded_at_least_every_record_seconds(org, receiver, monkeypatch):
    monkeypatch.setattr(sender, "RECORD_SECONDS", 0.0)  # always overdue: each success is recorded at once
    subscription, _ = make_subscription(org, url=receiver.url)
    records = _spy(monkeypatch, states, "deliveries_record")
    _record(org, 4)

    send_endpoint(str(subscription.id))

    assert [len(kw["sent"]) for kw, _ in records] == [1, 1, 1, 1]


def test_a_failure_is_recorded_at_once_with_the_successes_before_it_and_the_rest_is_given_back(org, receiver,
                                                                                             monkeypatch):
    monkeypatch.setattr(sender, "RECORD_SECONDS", 3600.0)
    subscription, _ = make_subscription(org, url=receiver.url)
    receiver.script.extend([200, 200, 503])  # bad input: the third request fails
    records = _spy(monkeypatch, states, "deliveries_record")
    given_back = _spy(monkeypatch, states, "deliveries_give_back")
    events = _record(org, 6)

    send_endpoint(str(subscription.id))

    first = records[0]
    assert [s.response.status_code for s in first[0]["sent"]] == [200, 200, 503]  # one transaction, in order
    assert list(first[1].values()) == [Delivery.State.SUCCEEDED, Delivery.State.SUCCEEDED, Delivery.State.PENDING]
    assert len(given_back[0][0]["ids"]) == 3  # the three after the failure, unsent, for the breaker to decide
    # The breaker (threshold 5) lets the rest go at once; the failed one waits for its retry.
    assert _ids(receiver.received) == [e.webhook_id for e in events[:3]] + [e.webhook_id for e in events[3:]]
    failed = Delivery.objects.get(event=events[2])
    assert failed.state == Delivery.State.PENDING and failed.attempt_count == 1 and failed.last_error == "HTTP 503"


def test_a_delivery_cancelled_while_its_post_is_in_flight_is_counted_as_cancelled_not_succeeded(
        org, receiver, monkeypatch, caplog):
    subscription, _ = make_subscription(org, url=receiver.url)
    (event,) = _record(org)
    counted = _spy(monkeypatch, metrics, "attempt_recorded")
    real_post = transport.post

    def post_while_it_is_deleted(url, body, headers, **kwargs):
        response = real_post(url, body, headers, **kwargs)  # the receiver answers 200...
        thread = threading.Thread(target=lambda: (subscription_delete(subscription=subscription), connection.close()))
        thread.start()  # ...while an admin deletes the subscription
        thread.join()
        return response

    monkeypatch.setattr(transport, "post", post_while_it_is_deleted)
    with caplog.at_level(logging.INFO, logger="delivery.sender"):
        send_endpoint(str(subscription.id))

    delivery = Delivery.objects.get(event=event)
    assert delivery.state == Delivery.State.CANCELLED and delivery.attempt_count == 1
    assert delivery.last_status_code == 200  # the attempt is in the log as it happened
    assert [kw["outcome"] for kw, _ in counted] == ["cancelled"]
    assert [r.outcome for r in caplog.records if hasattr(r, "outcome")] == ["cancelled"]


# --- what stops a batch, and what is an outcome -----------------------------------------------

def test_a_pause_committed_before_a_request_stops_it_and_holds_the_rest(org, receiver, monkeypatch):
    subscription, _ = make_subscription(org, url=receiver.url)
    events = _record(org, 3)
    real_post = transport.post
    posts = []

    def post_then_pause(url, body, headers, **kwargs):
        posts.append(url)
        response = real_post(url, body, headers, **kwargs)
        if len(posts) == 1:
            thread = threading.Thread(target=lambda: (subscription_pause(subscription=subscription),
                                                      connection.close()))
            thread.start()
            thread.join()
        return response

    monkeypatch.setattr(transport, "post", post_then_pause)

    assert send_endpoint(str(subscription.id)) == 1

    assert _ids(receiver.received) == [events[0].webhook_id]  # the paused subscription got nothing more
    held = Delivery.objects.filter(event__in=events[1:])
    assert {d.state for d in held} == {Delivery.State.HELD} and {d.attempt_count for d in held} == {0}


@pytest.mark.parametrize("where", ["signed_headers", "post"])
def test_an_exception_in_the_sender_is_an_attempt_with_an_error_that_is_retried(org, receiver, monkeypatch, where):
    subscription, _ = make_subscription(org, url=receiver.url)
    (event,) = _record(org)

    def bug(*args, **kwargs):  # bad input: a bug of ours, or a value out of range, while sending
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(sender if where == "signed_headers" else transport, where, bug)

    assert send_endpoint(str(subscription.id)) == 1

    (attempt,) = Attempt.objects.all()
    assert attempt.error_kind == Attempt.ErrorKind.OTHER
    assert attempt.error_message == "The sender failed while sending: OverflowError."
    delivery = Delivery.objects.get(event=event)
    assert delivery.state == Delivery.State.PENDING and delivery.attempt_count == 1
    assert delivery.next_attempt_at is not None and delivery.locked_until is None  # retried on the schedule
    assert subscription.endpoint_health.consecutive_failures == 1  # it counts for the breaker


# --- what a delivery costs ----------------------------------------------------------------

def test_a_delivery_that_arrives_alone_costs_a_bounded_number_of_statements(org, receiver):
    subscription, _ = make_subscription(org, url=receiver.url)
    _record(org)
    send_endpoint(str(subscription.id))  # the first send of a scope makes its slot rows
    _record(org)
    with CaptureQueriesContext(connection) as queries:
        send_endpoint(str(subscription.id))
    statements = [q["sql"] for q in queries.captured_queries
                  if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))]
    # Read the endpoint, take its slots, claim (2), record (3: the attempts, the charts' hourly roll-up,
    # the delivery), free the slots, wake the organisation's waiting endpoints, delete the wake row, the
    # last look: 11 (docs/PERFORMANCE.md; the roll-up's upsert is issue 20's one more).
    assert len(statements) <= 11, "\n".join(statements)


def test_no_error_text_recorded_from_sending_holds_a_secret_header_value(org, receiver, monkeypatch):
    from subscriptions.services import subscription_set_headers

    subscription, _ = make_subscription(org, url=receiver.url)
    subscription_set_headers(subscription=subscription, headers=[
        {"name": "X-Api-Key", "value": "gw-key-7f3a9", "secret": True}])
    (event,) = _record(org)

    def post_that_quotes_its_headers(url, body, headers, **kwargs):
        # Bad input: a failure whose message quotes the request's headers (as some libraries' errors do).
        return transport.Response(duration_ms=3, error_kind="other",
                                  error_message=f"Refused: {headers!r}")

    monkeypatch.setattr(transport, "post", post_that_quotes_its_headers)
    send_endpoint(str(subscription.id))

    (attempt,) = Attempt.objects.all()
    assert "X-Api-Key" in attempt.error_message and "gw-key-7f3a9" not in attempt.error_message
    delivery = Delivery.objects.get(event=event)
    assert delivery.last_error and "gw-key-7f3a9" not in delivery.last_error
