"""Wake-ups: at most one waiting message per endpoint (EndpointWake rows), and the sweeper behind them.

Each recording commits on its own, as in production, so the on-commit wake-up runs.
Without a worker, the messages the broker would get are counted by replacing
celery's send_task in delivery.wakeups, and the one message is then run as the
worker runs it (delivery.tasks.send_endpoint, in-process). With a real worker
(marked e2e), every event must reach the real HTTPS receiver exactly once.
"""

import threading
import time
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from conftest import WORKER_ARGS, make_subscription, wait_until, wait_until_finished
from delivery import slots, wakeups
from delivery.models import Attempt, Delivery, EndpointHealth, EndpointWake
from delivery.tasks import send_endpoint
from delivery.tests.receiver import answer
from subscriptions.activity import record_activity
from subscriptions.services import subscription_pause, subscription_resume, subscription_send_test

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published(monkeypatch):
    """Return the list of endpoint ids a message was published for (nothing reaches the broker)."""
    sent = []

    def send_task(name, args=(), **kwargs):
        assert name == "delivery.tasks.send_endpoint"
        sent.append(args[0])

    monkeypatch.setattr(wakeups, "current_app", SimpleNamespace(send_task=send_task))
    return sent


def _record(org, n=1, activity_type="lot.created"):
    return [record_activity(organisation=org, activity_type=activity_type, data={"n": i}) for i in range(n)]


def _verified_ids(requests, secret) -> list[str]:
    return [Webhook(secret).verify(r.body, r.headers)["id"] for r in requests]


def _age_wake_row(subscription, seconds):
    EndpointWake.objects.filter(subscription=subscription).update(since=timezone.now() - timedelta(seconds=seconds))


# --- one message per endpoint -------------------------------------------------------------

def test_a_burst_to_one_endpoint_with_no_worker_running_publishes_one_message(org, receiver, published):
    subscription, secret = make_subscription(org, url=receiver.url)

    events = _record(org, 40)  # bad input for a per-event wake-up: 40 commits in a row, nobody consuming

    assert published == [str(subscription.id)]  # not 40: the first message stands for the endpoint
    assert send_endpoint(published[0]) == 40  # the worker runs that one message
    assert _verified_ids(receiver.received, secret) == [e.webhook_id for e in events]
    # The sender let go of the endpoint: the next event publishes again.
    assert not EndpointWake.objects.filter(subscription=subscription).exists()
    published.clear()  # (a sender slow on a full batch may have asked for a helper: not the callers' doing)
    _record(org)
    assert published == [str(subscription.id)]


def test_each_endpoint_gets_its_own_message(org, published):
    one, _ = make_subscription(org, url="https://one.example.com/in")
    two, _ = make_subscription(org, url="https://two.example.com/in")

    _record(org, 3)

    assert sorted(published) == sorted([str(one.id), str(two.id)])


def test_a_test_send_rides_on_the_message_already_waiting_for_its_endpoint(org, receiver, published):
    subscription, secret = make_subscription(org, url=receiver.url)
    (event,) = _record(org)

    test_event = subscription_send_test(subscription=subscription, activity_type="lot.created")

    assert published == [str(subscription.id)]  # the waiting sender sends test sends too
    send_endpoint(published[0])
    assert _verified_ids(receiver.received, secret) == [event.webhook_id, test_event.webhook_id]


def test_resume_wakes_the_endpoint_once_for_all_it_held(org, receiver, published):
    subscription, secret = make_subscription(org, url=receiver.url)
    subscription_pause(subscription=subscription)
    events = _record(org, 25)
    assert published == []  # held, not sent

    assert subscription_resume(subscription=subscription) == 25

    assert published == [str(subscription.id)]
    send_endpoint(published[0])
    assert _verified_ids(receiver.received, secret) == [e.webhook_id for e in events]  # oldest first


# --- the sweeper -----------------------------------------------------------------------

def test_a_row_left_by_a_dead_sender_is_swept_and_the_endpoint_woken(org, receiver, published):
    subscription, secret = make_subscription(org, url=receiver.url)
    # Bad input: the wake row of a sender that was killed mid-drain holds back the caller's message.
    EndpointWake.objects.create(subscription=subscription, since=timezone.now())
    (event,) = _record(org)
    assert published == []

    _age_wake_row(subscription, wakeups.sweep_grace() - 5)  # a slow sender, not a dead one: left alone
    assert wakeups.endpoints_sweep() == 0
    assert published == []

    _age_wake_row(subscription, wakeups.sweep_grace() + 1)
    assert wakeups.endpoints_sweep() == 1

    assert published == [str(subscription.id)]
    row = EndpointWake.objects.get(subscription=subscription)  # the stale row went; the new message has its own
    assert (timezone.now() - row.since).total_seconds() < 5
    send_endpoint(published[0])
    assert _verified_ids(receiver.received, secret) == [event.webhook_id]


def test_the_row_of_an_endpoint_with_a_longer_timeout_than_the_setting_gets_the_longest_grace(org, receiver,
                                                                                             published):
    from subscriptions.models import TIMEOUT_MAX

    # An endpoint whose own timeout is longer than WEBHOOKS_TIMEOUT: its sender's lease, and its row, last longer.
    subscription, _ = make_subscription(org, url=receiver.url, timeout_seconds=TIMEOUT_MAX)
    _record(org)
    published.clear()  # bad input: the broker lost that message

    _age_wake_row(subscription, wakeups.sweep_grace() + 1)  # stale for the setting's timeout, not for its own
    assert wakeups.endpoints_sweep() == 0
    assert published == []
    assert EndpointWake.objects.filter(subscription=subscription).exists()

    _age_wake_row(subscription, wakeups.sweep_grace(TIMEOUT_MAX) + 1)
    assert wakeups.endpoints_sweep() == 1
    assert published == [str(subscription.id)]


def test_the_sweeper_wakes_an_endpoint_whose_message_was_lost(org, receiver, published):
    subscription, secret = make_subscription(org, url=receiver.url)
    (event,) = _record(org)
    published.clear()  # bad input: the broker lost that message (restarted empty)

    assert wakeups.endpoints_sweep() == 0  # for now the row says a sender is queued
    _age_wake_row(subscription, wakeups.sweep_grace() + 1)
    assert wakeups.endpoints_sweep() == 1

    assert published == [str(subscription.id)]
    send_endpoint(published[0])
    assert _verified_ids(receiver.received, secret) == [event.webhook_id]


def test_a_broker_that_is_down_leaves_no_row_and_the_next_sweep_wakes_the_endpoint(org, receiver, published,
                                                                                   monkeypatch):
    subscription, secret = make_subscription(org, url=receiver.url)

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("bad input: the broker is down")

    monkeypatch.setattr(wakeups, "current_app", SimpleNamespace(send_task=refuse))
    (event,) = _record(org)  # the caller's commit still succeeds
    assert not EndpointWake.objects.filter(subscription=subscription).exists()

    monkeypatch.setattr(wakeups, "current_app", SimpleNamespace(send_task=lambda name, args, **kw: published.append(
        args[0])))
    assert wakeups.endpoints_sweep() == 1  # at once: no row to wait for
    send_endpoint(published[0])
    assert _verified_ids(receiver.received, secret) == [event.webhook_id]


def test_the_sweeper_leaves_an_open_breaker_alone_but_wakes_it_for_a_test_send(org, receiver, published):
    subscription, secret = make_subscription(org, url=receiver.url)
    (waiting,) = _record(org)
    EndpointHealth.objects.create(subscription=subscription, url=subscription.url, consecutive_failures=5,
                                  failing_since=timezone.now(), open_until=timezone.now() + timedelta(minutes=5))
    EndpointWake.objects.all().delete()
    published.clear()

    assert wakeups.endpoints_sweep() == 0  # due work, no row, but the breaker is open: nothing may go
    assert published == []

    test_event = subscription_send_test(subscription=subscription, activity_type="lot.created")
    EndpointWake.objects.all().delete()  # bad input: the test send's own message was lost
    published.clear()
    assert wakeups.endpoints_sweep() == 1
    assert published == [str(subscription.id)]

    send_endpoint(published[0])
    # The test send goes first; its success closes the breaker, and the waiting delivery follows.
    assert _verified_ids(receiver.received, secret) == [test_event.webhook_id, waiting.webhook_id]


def _organisation_slot_held_by_another_sender(org, receiver, monkeypatch):
    """An organisation with one sender slot, held by "another-sender", and one delivery due to a second endpoint;
    return (the first endpoint, the second, its secret, the event)."""
    monkeypatch.setattr(slots, "ORGANISATION_SENDERS", 1)
    first, _ = make_subscription(org, url=receiver.url + "/first", activity_types=["lot.created"])
    starved, secret = make_subscription(org, url=receiver.url + "/starved", activity_types=["harvest.recorded"])
    (waiting,) = _record(org, activity_type="harvest.recorded")
    assert slots.slots_take(endpoint=(slots.endpoint_scope(first.id), 4),
                            organisation=(slots.organisation_scope(org.id), 1),
                            holder="another-sender", until=timezone.now() + timedelta(seconds=30))
    return first, starved, secret, waiting


def test_a_sender_that_lets_go_of_its_organisations_slot_wakes_the_endpoint_that_found_none(
    org, receiver, published, monkeypatch
):
    # Bad input for the starved endpoint's sender: the organisation's one slot is held by another sender.
    first, starved, secret, waiting = _organisation_slot_held_by_another_sender(org, receiver, monkeypatch)
    assert send_endpoint(str(starved.id)) == 0
    assert receiver.received == []
    slots.slots_release(holder="another-sender")

    _record(org, activity_type="lot.created")
    published.clear()
    assert send_endpoint(str(first.id)) == 1  # this sender lets go of the slot, then looks beside it

    assert published == [str(starved.id)]
    assert send_endpoint(published[0]) == 1
    assert [r.path for r in receiver.received] == ["/hooks/first", "/hooks/starved"]
    assert _verified_ids(receiver.received[1:], secret) == [waiting.webhook_id]


def test_a_slot_freed_between_a_senders_failed_take_and_its_waiting_mark_is_taken_by_that_sender(
    org, receiver, published, monkeypatch
):
    # Bad input: the organisation's one slot is held by another sender, which lets go of it after the starved
    # sender's take failed and before that sender marked its row waiting: its look for waiting rows finds none.
    _, starved, secret, waiting = _organisation_slot_held_by_another_sender(org, receiver, monkeypatch)
    published.clear()
    mark = wakeups.endpoint_wait_for_slot
    found_waiting = []

    def other_sender_lets_go_first(subscription_id):
        slots.slots_release(holder="another-sender")
        found_waiting.append(wakeups.endpoints_wake_waiting(organisation_id=org.id))
        mark(subscription_id)

    monkeypatch.setattr(wakeups, "endpoint_wait_for_slot", other_sender_lets_go_first)

    sent = send_endpoint(str(starved.id))

    assert found_waiting == [0]  # the other sender's look came before the mark
    assert sent == 1  # the starved sender took the freed slot after its mark, and sent
    assert _verified_ids(receiver.received, secret) == [waiting.webhook_id]
    assert not EndpointWake.objects.filter(subscription=starved).exists()  # it let go; nothing is left waiting
    assert published == []


def test_a_slot_freed_after_the_waiting_mark_goes_to_the_sender_it_wakes_and_the_marked_one_gives_its_slots_back(
    org, receiver, published, monkeypatch
):
    # Bad input: the organisation's one slot is held by another sender, which lets go of it right after the starved
    # sender marked its row waiting, and wakes it.
    _, starved, secret, waiting = _organisation_slot_held_by_another_sender(org, receiver, monkeypatch)
    published.clear()
    mark = wakeups.endpoint_wait_for_slot

    def other_sender_lets_go_after_the_mark(subscription_id):
        mark(subscription_id)
        slots.slots_release(holder="another-sender")
        assert wakeups.endpoints_wake_waiting(organisation_id=org.id) == 1  # it takes the mark and publishes

    monkeypatch.setattr(wakeups, "endpoint_wait_for_slot", other_sender_lets_go_after_the_mark)

    # The marked sender's second take succeeds, but a message is on its way for the endpoint: one sender is enough.
    assert send_endpoint(str(starved.id)) == 0
    assert published == [str(starved.id)]
    assert slots.slots_in_use(scope=slots.organisation_scope(org.id)) == 0  # it gave its slots back
    assert receiver.received == []

    monkeypatch.setattr(wakeups, "endpoint_wait_for_slot", mark)
    assert send_endpoint(published[0]) == 1  # the woken sender sends, once
    assert _verified_ids(receiver.received, secret) == [waiting.webhook_id]
    assert not EndpointWake.objects.filter(subscription=starved).exists()


# --- a worker's holder listens before it lets go -------------------------------------------

@pytest.fixture
def listening(monkeypatch):
    """This process is a running worker (as delivery.receivers makes it on worker_ready), with a short
    listen; yields the endpoints a Celery message was published for (the real _publish still runs)."""
    monkeypatch.setattr(wakeups, "LISTEN_SECONDS", 0.5)
    sent = []
    real_publish = wakeups._publish

    def publish(subscription_id, **kwargs):
        sent.append(str(subscription_id))
        return real_publish(subscription_id, **kwargs)

    monkeypatch.setattr(wakeups, "_publish", publish)
    wakeups._local.__dict__.clear()  # this thread listens as a new pool thread does: no connection yet
    wakeups.listening_start()
    yield sent
    wakeups.listening_stop()
    wakeups._listener_close()
    # Dropped, not closed: on Redis the connection's last poll (kombu's BRPOP, up to 1 s) may still be
    # out, covering only this test's channel, and closing it would wait for that answer. The next test
    # must not listen behind it: a wake on its own channel would wait for that poll to end, later than
    # its LISTEN_SECONDS of 0.5 (docs/RELIABILITY.md, "a wake can also come late").
    wakeups._local.__dict__.clear()


def test_only_the_first_caller_that_finds_the_holder_listening_wakes_it(org, receiver, listening):
    subscription, _ = make_subscription(org, url=receiver.url)
    EndpointWake.objects.create(subscription=subscription, since=timezone.now(), listening=True)

    _record(org, 3)  # three commits in a row while the holder listens

    assert listening == []  # the endpoint is awake: no Celery message
    assert not EndpointWake.objects.get(subscription=subscription).listening  # the first caller took the mark
    assert wakeups._wait(subscription.id) is True  # its one wake is on the endpoint's channel
    started = time.monotonic()
    assert wakeups._wait(subscription.id) is False  # and only one: the next wait ends empty
    assert time.monotonic() - started >= 0.45


def test_a_holder_that_listens_finds_what_committed_before_its_mark_without_waiting(org, receiver, listening):
    subscription, _ = make_subscription(org, url=receiver.url)
    EndpointWake.objects.create(subscription=subscription, since=timezone.now() - timedelta(seconds=5))
    # Bad input for a wake: its caller committed while the holder was still sending, so found no mark.
    _record(org)
    assert listening == []

    started = time.monotonic()
    assert wakeups.endpoint_listen(subscription.id) is wakeups.Listened.WOKEN
    assert time.monotonic() - started < 0.45  # the look after the mark found it, no wait
    row = EndpointWake.objects.get(subscription=subscription)
    assert row.listening and timezone.now() - row.since < timedelta(seconds=2)  # marked, and refreshed


def test_a_worker_sender_sends_what_commits_while_it_listens_with_no_new_message(org, receiver, listening,
                                                                                   monkeypatch):
    monkeypatch.setattr(wakeups, "LISTEN_SECONDS", 3.0)  # woken, not found by the look after a quiet listen
    subscription, secret = make_subscription(org, url=receiver.url)
    first = _record(org)
    assert listening == [str(subscription.id)]
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("attempts", send_endpoint(str(subscription.id))))
    thread.start()
    receiver.wait_for(1)
    wait_until(lambda: EndpointWake.objects.filter(subscription=subscription, listening=True).exists(), 5,
               message="the holder listening")

    second = _record(org)  # while the holder listens

    receiver.wait_for(2, timeout=2.0)  # the wake started it again at once (its listen lasts 3 s)
    thread.join(10)
    assert not thread.is_alive()
    assert done["attempts"] == 2  # one sender sent both
    assert listening == [str(subscription.id)]  # the second event published no Celery message
    assert _verified_ids(receiver.received, secret) == [e.webhook_id for e in first + second]
    assert not EndpointWake.objects.filter(subscription=subscription).exists()  # quiet: it let go
    _record(org)
    assert listening == [str(subscription.id)] * 2  # and the next event wakes the endpoint again


def test_a_holder_does_not_listen_outside_a_running_worker_or_without_a_free_thread(org, receiver, listening):
    subscription, _ = make_subscription(org, url=receiver.url)
    EndpointWake.objects.create(subscription=subscription, since=timezone.now())
    held = [wakeups._listeners.acquire(blocking=False) for _ in range(wakeups.LISTENERS_PER_PROCESS)]
    try:
        assert all(held)
        assert wakeups.endpoint_listen(subscription.id) is wakeups.Listened.NOT_LISTENING  # every listener busy
    finally:
        for _ in held:
            wakeups._listeners.release()
    wakeups.listening_stop()  # the worker is shutting down (or this is not a worker)
    assert wakeups.endpoint_listen(subscription.id) is wakeups.Listened.NOT_LISTENING
    assert not EndpointWake.objects.get(subscription=subscription).listening  # never marked: callers publish
    wakeups.listening_start()
    started = time.monotonic()
    assert wakeups.endpoint_listen(subscription.id) is wakeups.Listened.QUIET  # nothing came
    assert time.monotonic() - started >= 0.45


# --- with a real worker ------------------------------------------------------------------

@pytest.mark.e2e
def test_a_burst_of_200_to_one_endpoint_arrives_exactly_once(require_services, org, receiver, worker):
    subscription, secret = make_subscription(org, url=receiver.url)

    events = _record(org, 200)  # the worker sends while the burst is being recorded

    receiver.wait_for(200, timeout=120)
    wait_until(lambda: Delivery.objects.filter(subscription=subscription, state="succeeded").count() == 200,
               timeout=60, message="200 deliveries recorded as succeeded")
    wait_until_finished(Delivery.objects.filter(subscription=subscription))  # no duplicate can be on its way
    arrived = Counter(_verified_ids(receiver.received, secret))
    assert set(arrived) == {e.webhook_id for e in events}
    assert [i for i, n in arrived.items() if n > 1] == [], "duplicates"
    # The attempt rows read back as the Delivery Log shows them.
    attempts = Attempt.objects.filter(delivery__subscription=subscription).select_related("delivery__event")
    assert len(attempts) == 200
    for attempt in attempts:
        assert attempt.number == 1 and attempt.status_code == 200 and attempt.response_body == '{"ok":true}'
        assert attempt.request_headers["webhook-id"] == attempt.delivery.event.webhook_id
        assert attempt.response_headers["Content-Type"] == "application/json"
        assert attempt.url == receiver.url and attempt.error_kind == ""


@pytest.mark.e2e
def test_a_lost_message_is_sent_by_the_real_sweeper(require_services, org, receiver, celery_process, tmp_path,
                                                    published):
    """Bad input: the caller's message never reaches the broker, and its wake row stays behind."""
    env = {"WEBHOOKS_TIMEOUT": "1"}  # the sweeper's grace is one lease: 1 + slots.LEASE_EXTRA seconds
    celery_process(*WORKER_ARGS, env=env)
    celery_process("beat", "--schedule", str(tmp_path / "beat-schedule"), env=env)
    make_subscription(org, url=receiver.url)

    (event,) = _record(org)

    assert len(published) == 1  # published in this process only, so lost
    (request,) = receiver.wait_for(1, timeout=60)
    assert request.headers["webhook-id"] == event.webhook_id


@pytest.mark.e2e
def test_a_slow_endpoint_with_a_backlog_is_sent_over_several_connections_but_never_more_than_its_cap(
    require_services, org, receiver, celery_process
):
    """One message for a backlog, yet not one POST at a time; and never more at once than slots.ENDPOINT_SENDERS."""
    in_flight, most, lock = [0], [0], threading.Lock()

    def slow(handler):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.05)  # 50 ms per answer
        with lock:
            in_flight[0] -= 1
        answer(handler, 200)

    receiver.default = slow
    subscription, secret = make_subscription(org, url=receiver.url)
    events = _record(org, 160)  # the backlog, before any worker runs

    celery_process(*WORKER_ARGS)  # 8 threads
    received = receiver.wait_for(160, timeout=90)

    assert sorted(_verified_ids(received, secret)) == sorted(e.webhook_id for e in events)
    assert most[0] <= slots.ENDPOINT_SENDERS, most[0]
    assert most[0] >= 2, f"at most {most[0]} request at once: the backlog went one POST at a time"
    assert len({r.client_port for r in received}) >= 2  # several keep-alive connections, not one


def test_a_worker_shutting_down_ends_its_holders_listen_at_once_and_they_let_go(org, receiver, listening,
                                                                               monkeypatch):
    """Bad input for a warm shutdown: a holder in the middle of a listen far longer than the test allows."""
    monkeypatch.setattr(wakeups, "LISTEN_SECONDS", 120.0)
    subscription, _ = make_subscription(org, url=receiver.url)
    EndpointWake.objects.create(subscription=subscription, since=timezone.now())
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("listened", wakeups.endpoint_listen(subscription.id)))
    thread.start()
    wait_until(lambda: subscription.id in wakeups._waiting, 10, message="the holder waiting on its channel")

    wakeups.listening_stop()  # Celery's worker_shutting_down

    thread.join(20)  # far less than its 120 s listen
    assert not thread.is_alive()
    assert done["listened"] is wakeups.Listened.QUIET  # it lets go after its last look, not as woken
    assert wakeups._waiting == set()
    assert wakeups._wait(subscription.id) is False  # no listen again while stopping
    monkeypatch.setattr(wakeups, "LISTEN_SECONDS", 0.3)
    wakeups.listening_start()
    assert wakeups._wait(subscription.id) is False  # the stop's wake was taken by the holder: none left over


def test_a_woken_holder_keeps_consuming_its_channel_and_lets_it_go_when_it_lets_go(org, receiver, listening):
    """A steady trickle declares and consumes the endpoint's channel once, not once per event; a wake sent
    while the holder was busy between two listens waits for it on the channel."""
    subscription, _ = make_subscription(org, url=receiver.url)
    EndpointWake.objects.create(subscription=subscription, since=timezone.now())
    wakeups._wake(subscription.id)
    assert wakeups.endpoint_listen(subscription.id) is wakeups.Listened.WOKEN
    kept = wakeups._local.listener
    assert kept[0] == subscription.id

    wakeups._wake(subscription.id)  # while the holder sends (it does not listen now)
    assert wakeups.endpoint_listen(subscription.id) is wakeups.Listened.WOKEN  # it was waiting on the channel
    assert wakeups._local.listener is kept  # the same consumer

    assert wakeups.endpoint_listen(subscription.id) is wakeups.Listened.QUIET  # nothing more came
    assert wakeups._local.listener is None  # it let go of the channel too
