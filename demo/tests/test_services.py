"""The demo domain records the matching activities in its own transaction, and every payload fits its schema."""

import json
from decimal import Decimal

import pytest

from conftest import make_subscription
from delivery.models import Delivery, Event
from demo import services
from demo.exceptions import DemoError
from demo.models import Lot, Order
from subscriptions.activity_schemas import data_validator

pytestmark = pytest.mark.django_db


def bodies(org):
    return [json.loads(e.body) for e in Event.objects.filter(organisation=org).order_by("created_at")]


def run_the_business(org):
    batch = services.batch_create(organisation=org, strain="Blue Dream", plant_count=240, room="Flower Room 3")
    harvest = services.harvest_record(batch=batch, wet_weight_grams="48210.5", plant_count=236)
    lot = services.lot_create(organisation=org, product="Dried Flower", strain="Blue Dream", weight_grams="5000",
                              location="Vault A", source_harvest=harvest)
    receipt = services.lot_create(organisation=org, product="Seeds", strain="Northern Lights", weight_grams="12.5",
                                  location="Seed Vault")
    services.lot_transfer(lot=lot, to_location="Packaging Room", transferred_by="j.tremblay")
    services.lot_weight_adjust(lot=lot, new_weight_grams="4987.4", reason="moisture loss")
    sample = services.sample_create(lot=lot, weight_grams="10", lab="Keystone Labs", tests=["potency"])
    services.lab_results_record(sample=sample, thc_percent=22.4, cbd_percent=0.3, microbial="pass",
                                heavy_metals="pass")
    order = services.order_create(organisation=org, customer="OCS", lines=[("BD-3.5G", 1200, "8.75"),
                                                                          ("BD-7G", 10, "16.5")])
    shipment = services.shipment_ship(order=order, lots=[lot, receipt], carrier="Purolator",
                                      tracking_number="PUR1CA", shipped_by="l.nguyen")
    services.shipment_deliver(shipment=shipment, received_by="OCS Dock 2")
    return lot, order, shipment


def test_every_emitted_payload_validates_against_its_closed_schema(org):
    run_the_business(org)
    emitted = bodies(org)
    assert [b["type"] for b in emitted] == [
        "batch.created", "harvest.recorded", "lot.created", "lot.created", "lot.transferred",
        "lot.weight_adjusted", "sample.created", "lab_results.received", "order.created",
        "order.status_changed", "order.status_changed", "order.status_changed", "shipment.shipped",
        "shipment.delivered", "order.status_changed",
    ]
    for body in emitted:
        errors = [e.message for e in data_validator(body["type"], closed=True).iter_errors(body["data"])]
        assert errors == [], body


def test_payloads_carry_the_domain_values(org):
    lot, order, shipment = run_the_business(org)
    by_type = {}
    for body in bodies(org):
        by_type.setdefault(body["type"], []).append(body["data"])
    assert by_type["lot.weight_adjusted"] == [{
        "lot_id": lot.code, "previous_weight_grams": 5000.0, "new_weight_grams": 4987.4,
        "adjustment_grams": -12.6, "reason": "moisture loss",
    }]
    assert by_type["order.created"][0]["total"] == "10665.00"
    assert [(d["previous_status"], d["status"]) for d in by_type["order.status_changed"]] == [
        ("approved", "picking"), ("picking", "packed"), ("packed", "shipped"), ("shipped", "delivered"),
    ]
    assert by_type["shipment.shipped"][0]["lots"] == [lot.code, f"LOT-{lot.created_at.year}-000002"]
    assert by_type["lot.created"][1]["source_harvest_id"] is None
    assert Order.objects.get(pk=order.pk).status == "delivered"
    # The sample's 10 g left the lot.
    assert Lot.objects.get(pk=lot.pk).weight_grams == Decimal("4977.4")


def test_a_subscribed_type_gets_a_delivery_in_the_same_transaction(org):
    subscription, _ = make_subscription(org, activity_types=["shipment.shipped"])
    lot = services.lot_create(organisation=org, product="Flower", strain="X", weight_grams="5", location="A")
    order = services.order_create(organisation=org, customer="OCS", lines=[("SKU-1", 1, "1.00")])
    services.shipment_ship(order=order, lots=[lot], carrier="Purolator", tracking_number="T1", shipped_by="u")
    assert list(Delivery.objects.values_list("subscription_id", "activity_type")) == [
        (subscription.id, "shipment.shipped")
    ]


def test_a_refused_order_line_rolls_back_the_order_and_its_event(org):
    """Bad input: a second order line with quantity 0."""
    with pytest.raises(DemoError, match="quantity must be at least 1"):
        services.order_create(organisation=org, customer="OCS", lines=[("A", 1, "1.00"), ("B", 0, "1.00")])
    assert Order.objects.count() == 0
    assert Event.objects.count() == 0


def test_a_delivered_order_cannot_ship_again_and_nothing_is_recorded(org):
    """Bad input: shipping an order that was already delivered."""
    lot, order, _ = run_the_business(org)
    before = Event.objects.count()
    with pytest.raises(DemoError, match="is delivered; only approved, picking or packed orders ship"):
        services.shipment_ship(order=Order.objects.get(pk=order.pk), lots=[lot], carrier="Purolator",
                               tracking_number="T2", shipped_by="u")
    assert Event.objects.count() == before


@pytest.mark.parametrize("weight", ["0", "-5", "NaN"])
def test_lots_need_a_positive_weight(org, weight):
    """Bad input: a zero, negative or NaN lot weight."""
    with pytest.raises(DemoError, match="must be a positive number"):
        services.lot_create(organisation=org, product="Flower", strain="X", weight_grams=weight, location="A")
    assert Event.objects.count() == 0


def test_a_sample_heavier_than_its_lot_is_refused(org):
    """Bad input: drawing 6 g from a 5 g lot."""
    lot = services.lot_create(organisation=org, product="Flower", strain="X", weight_grams="5", location="A")
    with pytest.raises(DemoError, match="holds 5 g; cannot draw 6 g"):
        services.sample_create(lot=lot, weight_grams="6", lab="Lab", tests=["potency"])
    assert [b["type"] for b in bodies(org)] == ["lot.created"]
