"""Webhooks over the API: the pages' services and rules, the secret only in create and regenerate, the trail."""

import pytest

from conftest import make_subscription
from delivery.models import Delivery
from subscriptions.models import Subscription, TrailEntry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_wakeups")]

NEW = {"url": "https://erp.example.com/hooks", "activity_types": ["lot.created", "order.created"],
       "description": "ERP"}


def test_create_shows_the_secret_once_and_the_trail_names_the_key(api, write_key):
    response = api.post("/api/v1/subscriptions", NEW)
    assert response.status_code == 201
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert created["activity_types"] == ["lot.created", "order.created"] and created["state"] == "active"
    read = api.get(f"/api/v1/subscriptions/{created['id']}")
    assert read.status_code == 200 and "secret" not in read.json() and "whsec_" not in read.content.decode()
    assert "whsec_" not in api.get("/api/v1/subscriptions").content.decode()
    entry = TrailEntry.objects.get(subscription_id=created["id"])
    assert (entry.action, entry.actor, entry.via) == ("created", None, f"API key {write_key[:12]}")
    assert Subscription.objects.get(id=created["id"]).created_by is None


@pytest.mark.parametrize(("body", "field"), [
    ({**NEW, "url": "http://erp.example.com/hooks"}, "url"),  # not HTTPS: the validator of the pages
    ({**NEW, "url": "erp.example.com/hooks"}, "url"),  # no scheme
    ({**NEW, "activity_types": ["lot.created", "lot.exploded"]}, "activity_types"),  # an unknown type
    ({**NEW, "activity_types": []}, "activity_types"),  # none
    ({**NEW, "url": ["https://a.example.com"]}, "url"),  # not a string
    ({"activity_types": ["lot.created"]}, "url"),  # missing
])
def test_an_invalid_webhook_is_refused_with_the_field_at_fault(api, body, field):
    response = api.post("/api/v1/subscriptions", body)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["title"] == "Invalid request"
    assert field in [e["field"] for e in problem["errors"]], problem
    assert not Subscription.objects.exists()


def test_a_second_webhook_to_the_same_url_needs_allow_duplicate_url(api):
    assert api.post("/api/v1/subscriptions", NEW).status_code == 201
    again = api.post("/api/v1/subscriptions", NEW)  # bad input: a script that retried its create
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "url"
    assert api.post("/api/v1/subscriptions", {**NEW, "allow_duplicate_url": True}).status_code == 201
    assert Subscription.objects.count() == 2


def test_update_changes_only_the_fields_sent(api, org, write_key):
    subscription, _ = make_subscription(org, activity_types=["lot.created"])
    path = f"/api/v1/subscriptions/{subscription.id}"
    response = api.patch(path, {"activity_types": ["order.created"], "custom_headers": [
        {"name": "X-Tenant", "value": "acme"}, {"name": "X-Api-Key", "value": "sk_0123456789", "secret": True}]})
    assert response.status_code == 200
    body = response.json()
    assert body["url"] == "https://hooks.example.com/in" and body["activity_types"] == ["order.created"]
    assert body["custom_headers"] == [{"name": "X-Tenant", "value": "acme", "secret": False},
                                      {"name": "X-Api-Key", "value": "********", "secret": True}]
    assert "sk_0123456789" not in response.content.decode()
    refused = api.patch(path, {"custom_headers": [{"name": "Host", "value": "evil"}]})  # bad input: a reserved name
    assert refused.status_code == 422
    assert Subscription.objects.get(id=subscription.id).custom_headers[0]["name"] == "X-Tenant"
    assert set(TrailEntry.objects.filter(subscription=subscription).values_list("via", flat=True)) == {
        f"API key {write_key[:12]}", ""}  # "" is the creation, by no one


def test_pause_resume_regenerate_and_delete(api, org):
    subscription, old_secret = make_subscription(org)
    path = f"/api/v1/subscriptions/{subscription.id}"
    assert api.post(f"{path}/pause").json()["state"] == "paused"
    from subscriptions.activity import record_activity

    record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "L-1"})
    assert Delivery.objects.get().state == Delivery.State.HELD
    assert api.post(f"{path}/resume").json() == {"released": 1}
    rotated = api.post(f"{path}/regenerate-secret", {"overlap_hours": 6}).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != old_secret
    assert rotated["old_secret_signs_until"] is not None
    assert api.post(f"{path}/regenerate-secret", {"overlap_hours": 5}).status_code == 422  # bad input: not offered
    assert api.delete(path).json() == {"cancelled": 1}
    assert api.get(path).status_code == 404
    actions = list(TrailEntry.objects.filter(subscription=subscription).order_by("at", "id")
                   .values_list("action", flat=True))
    assert actions == ["created", "paused", "resumed", "secret_regenerated", "deleted"]


def test_test_send_goes_to_this_webhook_only_and_checks_data_against_the_schema(api, org):
    subscription, _ = make_subscription(org, activity_types=["lot.created"])
    make_subscription(org, url="https://other.example.com/in", activity_types=["lot.created"])
    path = f"/api/v1/subscriptions/{subscription.id}/test"
    response = api.post(path, {"activity_type": "lot.created"})
    assert response.status_code == 202 and response.json()["test"] is True
    assert list(Delivery.objects.values_list("subscription_id", flat=True)) == [subscription.id]
    wrong = api.post(path, {"activity_type": "lot.created", "data": {"lot_id": 7}})  # bad input: off-schema data
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "data"
    assert api.post(path, {"activity_type": "order.created"}).status_code == 422  # not one of its types


@pytest.mark.parametrize(("body", "field"), [
    ({**NEW, "description": "ERP\x00"}, "description"),  # NUL: PostgreSQL refuses it in text
    ({**NEW, "url": "https://erp.example.com/\ud800"}, "url"),  # a lone surrogate: no store encodes it
    ({**NEW, "activity_types": ["lot.created\x00"]}, "activity_types.0"),
])
def test_text_no_store_accepts_is_a_422_at_its_field_not_a_500(api, body, field):
    import json

    response = api.post("/api/v1/subscriptions", raw=json.dumps(body))
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert not Subscription.objects.exists()


def test_test_data_nested_past_the_limit_is_a_422_before_its_schema_is_walked(api, org):
    subscription, _ = make_subscription(org, activity_types=["lot.created"])
    deep = {"lot_id": "L-1"}
    for _ in range(600):  # bad input: 600 levels (the limit is 32), which the schema would walk recursively
        deep = {"x": deep}
    response = api.post(f"/api/v1/subscriptions/{subscription.id}/test", {"activity_type": "lot.created",
                                                                            "data": deep})
    assert response.status_code == 422 and "nested too deeply" in response.json()["errors"][0]["detail"]
    assert not Delivery.objects.exists()


def test_receiver_controls_are_set_read_changed_and_cleared_over_the_api(api, write_key):
    created = api.post("/api/v1/subscriptions", {**NEW, "timeout_seconds": 25, "max_per_second": 20,
                                                 "ordered": True}).json()
    assert (created["timeout_seconds"], created["max_per_second"], created["ordered"]) == (25, 20, True)
    path = f"/api/v1/subscriptions/{created['id']}"
    changed = api.patch(path, {"max_per_second": None, "timeout_seconds": 5})  # null clears the limit
    assert changed.status_code == 200
    body = changed.json()
    assert (body["timeout_seconds"], body["max_per_second"], body["ordered"]) == (5, None, True)  # ordered untouched
    stored = Subscription.objects.get(id=created["id"])
    assert (stored.timeout_seconds, stored.max_per_second, stored.ordered) == (5, None, True)
    edit = TrailEntry.objects.get(subscription=stored, action="edited")
    assert "rate limit 20/s → none" in edit.detail and "timeout 25 s → 5 s" in edit.detail
    assert edit.via == f"API key {write_key[:12]}"


@pytest.mark.parametrize(("body", "field"), [
    ({"max_per_second": 0}, "max_per_second"),  # below 1
    ({"max_per_second": 1001}, "max_per_second"),  # above 1,000
    ({"max_per_second": "ten"}, "max_per_second"),  # text
    ({"timeout_seconds": -5}, "timeout_seconds"),  # a negative timeout
    ({"timeout_seconds": 31}, "timeout_seconds"),  # above 30
])
def test_a_receiver_control_out_of_range_is_a_422_at_its_field_and_nothing_changes(api, org, body, field):
    subscription, _ = make_subscription(org, activity_types=["lot.created"])
    response = api.patch(f"/api/v1/subscriptions/{subscription.id}", body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    stored = Subscription.objects.get(id=subscription.id)
    assert (stored.timeout_seconds, stored.max_per_second) == (None, None)
    created = api.post("/api/v1/subscriptions", {**NEW, **body})
    assert created.status_code == 422 and Subscription.objects.count() == 1
