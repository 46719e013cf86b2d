"""Sender caps as leased slot rows (delivery.slots): they hold under a race, expire, free and renew."""

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from delivery import slots
from delivery.models import SenderSlot

SCOPE = "endpoint:race"
# Every take needs a slot of an organisation too: here one roomy enough never to be the limit.
ROOMY = ("organisation:roomy", 16)


def _take(holder, *, cap=1, scope=SCOPE, seconds=30.0):
    return slots.slots_take(endpoint=(scope, cap), organisation=ROOMY, holder=holder,
                            until=timezone.now() + timedelta(seconds=seconds))


@pytest.mark.django_db(transaction=True)
def test_eight_senders_racing_for_three_slots_never_hold_more_than_three():
    """Bad input: 8 threads, each with its own database connection, take and release a cap of 3 as fast as they can.

    Each thread counts itself in after a successful take and out before it releases, so the
    count can only understate the real holders: above 3 means two senders took one slot.
    """
    cap, threads, rounds = 3, 8, 25
    lock = threading.Lock()
    holding, most, taken, refused, errors, lost = [0], [0], [0], [0], [], []
    start = threading.Barrier(threads)

    def sender():
        try:
            start.wait()
            for _ in range(rounds):
                holder = slots.new_holder()
                if not _take(holder, cap=cap):
                    with lock:
                        refused[0] += 1
                    continue
                with lock:
                    holding[0] += 1
                    most[0] = max(most[0], holding[0])
                    taken[0] += 1
                # The slot is this holder's alone while it holds it.
                if SenderSlot.objects.filter(scope=SCOPE, holder=holder).count() != 1:
                    lost.append(holder)
                time.sleep(0.002)
                with lock:
                    holding[0] -= 1
                slots.slots_release(holder=holder)
        except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
            errors.append(repr(exc))
        finally:
            connection.close()

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)

    assert errors == []
    assert lost == [], "a holder's slot was taken by another sender while it held it"
    assert most[0] <= cap, f"{most[0]} senders held a slot of a cap of {cap} at once"
    assert most[0] == cap and refused[0] > 0  # the race really happened: the cap was full and refused some
    assert taken[0] + refused[0] == threads * rounds
    assert SenderSlot.objects.filter(scope=SCOPE).count() == cap  # the rows were created once, not per racer
    assert slots.slots_in_use(scope=SCOPE) == 0  # every release freed its slot


@pytest.mark.django_db
def test_a_full_scope_refuses_and_a_release_frees_the_slot():
    assert _take("first") is True
    assert _take("second") is False  # bad input: the one slot is held
    assert slots.slots_in_use(scope=SCOPE) == 1

    slots.slots_release(holder="first")

    assert slots.slots_in_use(scope=SCOPE) == 0
    assert _take("second") is True
    assert SenderSlot.objects.get(scope=SCOPE).holder == "second"


@pytest.mark.django_db
def test_an_expired_lease_is_taken_over_and_its_late_release_frees_nothing():
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert _take("killed-sender", seconds=13) is True
        clock.shift(timedelta(seconds=12))
        assert _take("successor") is False  # still within the lease
        clock.shift(timedelta(seconds=2))
        assert _take("successor") is True  # bad input: the first holder died without releasing

        slots.slots_release(holder="killed-sender")  # it comes back late and lets go of what it no longer has

        assert SenderSlot.objects.get(scope=SCOPE).holder == "successor"
        assert _take("third") is False


@pytest.mark.django_db
def test_renew_extends_every_slot_of_the_holder():
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert slots.slots_take(endpoint=(SCOPE, 1), organisation=("organisation:race", 1), holder="long-request",
                                until=timezone.now() + timedelta(seconds=5))
        assert _take("short", scope="endpoint:control", seconds=5) is True  # not renewed: the control

        slots.slots_renew(holder="long-request", until=timezone.now() + timedelta(seconds=60))
        clock.shift(timedelta(seconds=10))

        assert _take("other") is False
        assert _take("other", scope="organisation:race") is False
        assert _take("other", scope="endpoint:control") is True  # its lease ran out


@pytest.mark.django_db
def test_a_sender_gets_a_slot_of_its_endpoint_and_of_its_organisation_or_holds_none():
    assert _take("org-wide", scope="organisation:7") is True  # the organisation's one slot is held
    assert slots.slots_take(endpoint=("endpoint:a", 2), organisation=("organisation:7", 1), holder="sender",
                            until=timezone.now() + timedelta(seconds=30)) is False

    assert slots.slots_in_use(scope="endpoint:a") == 0  # the endpoint slot it took first was given back
    assert not SenderSlot.objects.filter(holder="sender").exists()


@pytest.mark.django_db
def test_a_lowered_cap_is_honoured_by_rows_made_for_a_higher_one(monkeypatch):
    assert _take("a", cap=4) and _take("b", cap=4)  # rows 0-3 exist, two held
    assert _take("c", cap=2) is False  # bad input: the cap went down to 2 (a new release) while rows 2-3 exist
    slots.slots_release(holder="a")
    assert _take("c", cap=2) is True
