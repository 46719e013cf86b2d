"""`manage.py demo ACTION`: a newcomer creates a lot or ships an order and sees the webhook go out."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from conftest import make_subscription
from delivery.models import Delivery, Event
from demo.management.commands.demo import ACTIONS

pytestmark = pytest.mark.django_db


def demo(*args) -> list[str]:
    out = StringIO()
    call_command("demo", *args, stdout=out)
    return out.getvalue().splitlines()


def test_create_lot_prints_the_lot_and_the_queued_delivery(org):
    make_subscription(org, activity_types=["lot.created"])
    summary, event_line = demo("create-lot", "--org", "acme", "--weight", "750", "--location", "Vault B")
    assert summary.startswith("Created lot LOT-") and summary.endswith(": Dried Flower - Blue Dream, 750 g in Vault B.")
    event = Event.objects.get()
    assert event_line.split() == ["lot.created", event.webhook_id, "1", "webhook", "delivery", "queued"]
    assert json.loads(event.body)["data"]["weight_grams"] == 750.0
    assert Delivery.objects.filter(event=event).count() == 1


def test_ship_order_ships_the_oldest_open_order_and_says_when_nobody_listens(org):
    demo("create-order", "--org", "acme", "--customer", "First")
    demo("create-order", "--org", "acme", "--customer", "Second")
    lines = demo("ship-order", "--org", "acme")
    assert lines[0].startswith("Shipped order SO-10001 as SHP-")
    assert [line.split()[0] for line in lines[1:]] == [
        "lot.created", "order.status_changed", "order.status_changed", "order.status_changed", "shipment.shipped",
    ]
    assert all(line.endswith("no webhook subscribes to this type") for line in lines[1:])
    delivered = demo("deliver-shipment", "--org", "acme")
    assert delivered[0].startswith("Delivered shipment SHP-") and delivered[0].endswith("of order SO-10001.")


def test_every_action_runs_in_a_row(org):
    for action in ACTIONS:
        assert demo(action, "--org", "acme")[0]


def test_deliver_shipment_without_a_shipment_is_refused(org):
    """Bad input: nothing has been shipped yet."""
    with pytest.raises(CommandError, match="No shipment on its way"):
        demo("deliver-shipment", "--org", "acme")


def test_unknown_organisation_is_refused(db):
    """Bad input: an organisation slug that does not exist."""
    with pytest.raises(CommandError, match="No organisation with slug 'nope'"):
        demo("create-lot", "--org", "nope")
