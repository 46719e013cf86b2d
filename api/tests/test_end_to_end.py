"""Over HTTP only: create a webhook with the API, post events with the API, and a real HTTPS receiver gets them
signed with the secret the API answered, through a real Celery worker."""

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from api.tests.conftest import new_key
from conftest import wait_until
from delivery.models import Delivery

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_webhook_created_and_fed_over_the_api_is_delivered_signed(require_services, site, org, alice, receiver,
                                                                   worker):
    write, events = new_key(org, "write", user=alice), new_key(org, "events", user=alice)
    api = f"{site.url}/api/v1"
    created = requests.post(f"{api}/subscriptions", headers={"Authorization": f"Bearer {write}"}, timeout=10,
                            json={"url": receiver.url, "activity_types": ["lot.created", "harvest.recorded"]})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]

    one = requests.post(f"{api}/events", headers={"Authorization": f"Bearer {events}"}, timeout=10,
                        json={"type": "lot.created", "data": {"lot_id": "LOT-API-1"}})
    batch = requests.post(f"{api}/events/batch", headers={"Authorization": f"Bearer {events}"}, timeout=10,
                          json={"events": [{"type": "harvest.recorded", "data": {"harvest_id": f"H-{i}"}}
                                           for i in range(3)]})
    assert one.status_code == 201 and batch.status_code == 201
    sent = {one.json()["id"], *(e["id"] for e in batch.json()["events"])}

    received = receiver.wait_for(4)
    verified = {Webhook(secret).verify(r.body, r.headers)["id"] for r in received}  # raises on a bad signature
    assert verified == sent
    assert {r.headers["webhook-id"] for r in received} == sent
    wait_until(lambda: Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == 4, message="4 successes")

    found = requests.get(f"{api}/events/{one.json()['id']}", headers={"Authorization": f"Bearer {write}"},
                         timeout=10).json()
    assert [d["state"] for d in found["deliveries"]] == ["succeeded"]
