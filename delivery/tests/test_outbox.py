"""Recording an activity writes the outbox in the caller's transaction."""

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from conftest import make_subscription
from delivery.models import Delivery, Event
from subscriptions.activity import record_activity
from subscriptions.exceptions import InvalidActivityData, UnknownActivityType
from subscriptions.services import subscription_pause

pytestmark = pytest.mark.django_db


def test_event_body_is_serialised_once_with_the_contract_fields(org):
    make_subscription(org, activity_types=["lot.created"])
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-9"})

    body = json.loads(Event.objects.get(id=event.id).body)
    assert body["id"] == event.webhook_id and body["id"].startswith("evt_")
    assert body["type"] == "lot.created"
    assert body["organisation"] == "acme"
    assert body["data"] == {"lot_id": "LOT-9"}
    assert body["timestamp"].endswith("Z")
    assert "test" not in body


def test_only_matching_subscriptions_of_the_same_organisation_get_a_delivery(org, other_org):
    wanted, _ = make_subscription(org, activity_types=["lot.created", "order.created"])
    other_type, _ = make_subscription(org, activity_types=["harvest.recorded"])
    other_tenant, _ = make_subscription(other_org, activity_types=["lot.created"])

    event = record_activity(organisation=org, activity_type="lot.created", data={})

    assert list(Delivery.objects.filter(event=event).values_list("subscription_id", flat=True)) == [wanted.id]
    assert not Delivery.objects.filter(subscription__in=[other_type, other_tenant]).exists()


def test_rolled_back_transaction_leaves_no_event_and_wakes_nothing(org, django_capture_on_commit_callbacks):
    make_subscription(org)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "L"})
                raise RuntimeError("the domain operation failed")
    assert Event.objects.count() == 0
    assert Delivery.objects.count() == 0
    assert callbacks == []


def test_committed_activity_wakes_its_endpoints_on_commit(org, django_capture_on_commit_callbacks, monkeypatch):
    one, _ = make_subscription(org)
    two, _ = make_subscription(org, url="https://two.example.com/in")
    paused, _ = make_subscription(org, url="https://paused.example.com/in")
    subscription_pause(subscription=paused)
    woken = []
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: woken.append(list(ids)))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        event = record_activity(organisation=org, activity_type="lot.created", data={})
        assert woken == []  # not before the commit
    assert len(callbacks) == 1
    # One call with both active endpoints; the paused one holds its delivery and is not woken.
    assert len(woken) == 1 and sorted(woken[0]) == sorted([one.id, two.id])
    assert Delivery.objects.filter(event=event).count() == 3


def test_paused_subscription_gets_a_held_delivery_not_a_pending_one_and_is_not_woken(
    org, django_capture_on_commit_callbacks, monkeypatch
):
    subscription, _ = make_subscription(org)
    subscription_pause(subscription=subscription)
    woken = []
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: woken.append(list(ids)))
    with django_capture_on_commit_callbacks(execute=True):
        event = record_activity(organisation=org, activity_type="lot.created", data={})
    assert Delivery.objects.get(event=event).state == Delivery.State.HELD
    assert woken == []


@pytest.mark.parametrize("count", [1, 50])
def test_recording_costs_the_same_2_statements_for_1_or_50_subscriptions(org, count):
    for i in range(count):
        make_subscription(org, url=f"https://hook{i}.example.com/in")
    with CaptureQueriesContext(connection) as queries:
        with transaction.atomic():
            event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "L"})
    assert Delivery.objects.filter(event=event).count() == count
    # On every store: insert the event, then its deliveries from the matching subscriptions (INSERT ... SELECT).
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) == 2, statements
    assert statements[0].startswith('INSERT INTO "delivery_event"')
    assert statements[1].startswith('INSERT INTO "delivery_delivery"') and "SELECT" in statements[1]


# --- bad input: refused at the call, nothing written -------------------------

def test_unknown_activity_type_is_refused_at_the_call(org):
    make_subscription(org)
    with pytest.raises(UnknownActivityType, match="lot.exploded"):
        record_activity(organisation=org, activity_type="lot.exploded", data={})
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "data, message",
    [
        ({"when": object()}, "not JSON-serialisable"),  # an arbitrary Python object
        ({"weight": float("nan")}, "not JSON-serialisable"),  # NaN is not JSON
        (["not", "an", "object"], "must be a JSON object"),  # a list instead of an object
        ({"blob": "x" * (256 * 1024)}, "too large"),  # over the 256 KiB limit
    ],
)
def test_bad_activity_data_is_refused_at_the_call(org, data, message):
    make_subscription(org)
    with pytest.raises(InvalidActivityData, match=message):
        record_activity(organisation=org, activity_type="lot.created", data=data)
    assert Event.objects.count() == 0


def test_deeply_nested_data_is_refused_at_the_call(org):
    nested = {}
    for _ in range(100_000):  # deeper than any JSON encoder recurses
        nested = {"a": nested}
    with pytest.raises(InvalidActivityData, match="nested too deeply"):
        record_activity(organisation=org, activity_type="lot.created", data=nested)
    assert Event.objects.count() == 0


def test_same_idempotency_key_records_one_event(org):
    make_subscription(org)
    first = record_activity(organisation=org, activity_type="lot.created", data={"n": 1}, idempotency_key="op-42")
    again = record_activity(organisation=org, activity_type="lot.created", data={"n": 1}, idempotency_key="op-42")
    assert again.id == first.id
    assert Event.objects.count() == 1
    assert Delivery.objects.count() == 1
