"""Ingest: POST /api/v1/events records through record_activity, honours Idempotency-Key, batches all or nothing."""

import json

import pytest

from api.models import ApiKey
from api.tests.conftest import Api
from conftest import make_subscription
from delivery.models import Delivery, Event
from subscriptions.models import TrailEntry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_wakeups")]

LOT = {"type": "lot.created", "data": {"lot_id": "LOT-1", "weight_grams": 5000.0}}


@pytest.fixture
def ingest(events_key) -> Api:
    return Api(events_key)


def test_an_event_is_recorded_for_the_keys_organisation_with_its_deliveries(ingest, org, other_org, events_key):
    subscription, _ = make_subscription(org, activity_types=["lot.created"])
    make_subscription(other_org, activity_types=["lot.created"])
    response = ingest.post("/api/v1/events", LOT)
    assert response.status_code == 201
    event = Event.objects.get()
    assert response.json()["id"] == event.webhook_id and response.json()["replayed"] is False
    body = json.loads(event.body)
    assert (body["organisation"], body["type"], body["data"]) == ("acme", "lot.created", LOT["data"])
    assert list(Delivery.objects.values_list("subscription_id", flat=True)) == [subscription.id]
    assert ApiKey.objects.get(prefix=events_key[:12]).events_ingested == 1
    assert not TrailEntry.objects.exclude(action="created").exists()  # counted on the key, not in the trail


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "lot.exploded", "data": {}}, "type"),  # unknown type: record_activity's UnknownActivityType
    ({"type": "lot.created", "data": {"x": float("inf")}}, "data"),  # Infinity: not strict JSON
    ({"type": "lot.created", "data": {"x": "\ud800"}}, "data"),  # a lone surrogate: record_activity refuses it
    ({"type": "lot.created", "data": {"x": "a" * 300_000}}, "data"),  # over 256 KB serialised
    ({"type": "lot.created", "data": [1, 2]}, "data"),  # not an object
    ({"type": "lot.created"}, "data"),  # missing
])
def test_bad_activities_are_refused_with_record_activitys_reasons_and_nothing_is_recorded(ingest, body, field):
    response = ingest.post("/api/v1/events", raw=json.dumps(body))
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert not Event.objects.exists()


def test_deep_json_is_a_400_not_a_crash(ingest):
    response = ingest.post("/api/v1/events", raw='{"type": "lot.created", "data": ' + "[" * 100_000)
    assert response.status_code == 400
    assert not Event.objects.exists()


def test_the_same_idempotency_key_returns_the_same_event_and_another_body_is_refused(ingest, org, events_key):
    make_subscription(org, activity_types=["lot.created"])
    first = ingest.post("/api/v1/events", LOT, headers={"Idempotency-Key": "order-42"})
    again = ingest.post("/api/v1/events", LOT, headers={"Idempotency-Key": "order-42"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["replayed"] is True
    other = {"type": "lot.created", "data": {"lot_id": "LOT-2"}}
    conflict = ingest.post("/api/v1/events", other, headers={"Idempotency-Key": "order-42"})  # bad input
    assert conflict.status_code == 422 and first.json()["id"] in conflict.json()["errors"][0]["detail"]
    assert Event.objects.count() == 1 and Delivery.objects.count() == 1
    assert ApiKey.objects.get(prefix=events_key[:12]).events_ingested == 1
    assert ingest.post("/api/v1/events", LOT, headers={"Idempotency-Key": "k" * 201}).status_code == 422


def test_a_batch_is_all_or_nothing(ingest, org, events_key):
    make_subscription(org, activity_types=["lot.created"])
    good = [{"type": "lot.created", "data": {"lot_id": f"LOT-{i}"}} for i in range(100)]
    bad = good[:50] + [{"type": "lot.exploded", "data": {}}] + good[50:99]  # bad input: the 51st is unknown
    refused = ingest.post("/api/v1/events/batch", {"events": bad})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "events.50.type"
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert ingest.post("/api/v1/events/batch", {"events": good + good[:1]}).status_code == 422  # 101 events
    response = ingest.post("/api/v1/events/batch", {"events": good}, headers={"Idempotency-Key": "import-7"})
    assert response.status_code == 201
    ids = [e["id"] for e in response.json()["events"]]
    assert len(set(ids)) == 100 and Event.objects.count() == 100 and Delivery.objects.count() == 100
    replay = ingest.post("/api/v1/events/batch", {"events": good}, headers={"Idempotency-Key": "import-7"})
    assert replay.status_code == 200 and [e["id"] for e in replay.json()["events"]] == ids
    assert ApiKey.objects.get(prefix=events_key[:12]).events_ingested == 100
