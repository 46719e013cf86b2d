"""The Delivery Log over the API: filters, cursor pages, one delivery with its attempts, redeliver, recover."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import make_subscription
from delivery.models import Delivery
from subscriptions.activity import record_activity
from subscriptions.models import TrailEntry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_wakeups")]


@pytest.fixture
def logged(org):
    """acme's webhook with five deliveries: three lot.created (one failed), two order.created (succeeded)."""
    subscription, _ = make_subscription(org, activity_types=["lot.created", "order.created"])
    events = [record_activity(organisation=org, activity_type=t, data={"n": i})
              for i, t in enumerate(["lot.created", "lot.created", "lot.created", "order.created", "order.created"])]
    Delivery.objects.filter(activity_type="order.created").update(state=Delivery.State.SUCCEEDED)
    Delivery.objects.filter(event=events[0]).update(state=Delivery.State.FAILED)
    return subscription, events


def test_the_log_pages_newest_first_with_a_cursor(api, logged):
    subscription, events = logged
    path = f"/api/v1/subscriptions/{subscription.id}/deliveries"
    seen, cursor = [], ""
    while True:
        page = api.get(f"{path}?limit=2" + (f"&cursor={cursor}" if cursor else "")).json()
        seen += [d["event_id"] for d in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [e.webhook_id for e in reversed(events)]
    bad = api.get(f"{path}?cursor=bm90LW91cnM")  # bad input: a cursor that is not one of ours
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


def test_the_log_filters_by_state_type_event_and_date(api, logged):
    subscription, events = logged
    path = f"/api/v1/subscriptions/{subscription.id}/deliveries"

    def ids(query):
        response = api.get(f"{path}?{query}")
        assert response.status_code == 200, response.content
        return [d["event_id"] for d in response.json()["data"]]

    assert ids("state=failed") == [events[0].webhook_id]
    assert ids("activity_type=order.created") == [events[4].webhook_id, events[3].webhook_id]
    assert ids(f"event_id={events[2].webhook_id}") == [events[2].webhook_id]
    later = (timezone.now() + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"since={later}") == []
    assert len(ids(f"until={later}")) == 5
    for query, field in [("state=lost", "state"), ("event_id=evt_123", "event_id"),
                         ("activity_type=lot.exploded", "activity_type"), ("since=yesterday", "since"),
                         ("since=2026-01-01T00:00:00", "since"),  # no zone
                         ("since=9999-12-31T23:59:59-14:00", "since")]:  # outside what a database stores
        response = api.get(f"{path}?{query}")
        assert response.status_code == 422, query
        assert field in [e["field"] for e in response.json()["errors"]], (query, response.json())


def test_a_delivery_reads_with_its_attempts_and_redelivers_once_finished(api, org, logged, write_key):
    subscription, events = logged
    delivery = Delivery.objects.get(event=events[3])
    path = f"/api/v1/subscriptions/{subscription.id}/deliveries/{delivery.id}"
    body = api.get(path).json()
    assert body["state"] == "succeeded" and body["attempts"] == [] and body["event_id"] == events[3].webhook_id
    assert api.post(f"{path}/redeliver").status_code == 202
    assert Delivery.objects.get(id=delivery.id).state == Delivery.State.PENDING
    again = api.post(f"{path}/redeliver")  # bad input: redeliver what is still on its way
    assert again.status_code == 409 and "still in progress" in again.json()["detail"]
    other, _ = make_subscription(org, url="https://other.example.com/in")
    assert api.get(f"/api/v1/subscriptions/{other.id}/deliveries/{delivery.id}").status_code == 404
    entry = TrailEntry.objects.get(subscription=subscription, action="redelivered")
    assert entry.via == f"API key {write_key[:12]}" and entry.detail == events[3].webhook_id


def test_recover_sends_the_failed_ones_since_a_time_again(api, logged):
    subscription, events = logged
    path = f"/api/v1/subscriptions/{subscription.id}/recover"
    assert api.post(path, {"since": "2000-01-01T00:00:00Z"}).json() == {"count": 1}
    assert Delivery.objects.get(event=events[0]).state == Delivery.State.PENDING
    assert api.post(path, {"since": "2000-01-01T00:00:00Z"}).json() == {"count": 0}
    assert api.post(path, {"since": "tomorrow"}).status_code == 422  # bad input


def test_an_events_deliveries_are_found_by_its_id(api, org, logged):
    subscription, events = logged
    second, _ = make_subscription(org, url="https://second.example.com/in", activity_types=["lot.created"])
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "L-9"})
    body = api.get(f"/api/v1/events/{event.webhook_id}").json()
    assert body["event"]["id"] == event.webhook_id
    assert {d["subscription_id"] for d in body["deliveries"]} == {str(subscription.id), str(second.id)}
    assert api.get("/api/v1/events/evt_" + "0" * 32).status_code == 404
    assert api.get("/api/v1/events/not-an-id").status_code == 404
