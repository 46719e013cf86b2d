"""`manage.py demo <action>`: do something in the demo business and see which webhooks it triggers."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from delivery.models import Event
from demo import services
from demo.exceptions import DemoError
from demo.models import Batch, Harvest, LabSample, Lot, Order, Shipment
from organisations.models import Organisation


def _latest(model, org, code=None, **filters):
    qs = model.objects.filter(organisation=org, **filters)
    if code:
        found = qs.filter(code=code).first()
        if found is None:
            raise CommandError(f"No {model._meta.verbose_name} {code!r} in {org.slug}.")
        return found
    return qs.order_by("-created_at", "-id").first()


def _lot_for(org, code):
    lot = _latest(Lot, org, code, weight_grams__gt=0)
    return lot or services.lot_create(organisation=org, product="Dried Flower - Blue Dream", strain="Blue Dream",
                                      weight_grams="1000", location="Vault A")


def create_batch(org, o):
    b = services.batch_create(organisation=org, strain=o["strain"], plant_count=o["plants"], room=o["room"])
    return f"Created batch {b.code}: {b.plant_count} {b.strain} plants in {b.room}."


def record_harvest(org, o):
    batch = _latest(Batch, org, o["batch"])
    if batch is None:
        batch = services.batch_create(organisation=org, strain=o["strain"], plant_count=100, room="Flower Room 1")
    h = services.harvest_record(batch=batch, wet_weight_grams=o["weight"])
    return f"Recorded harvest {h.code} of batch {batch.code}: {h.wet_weight_grams} g wet."


def create_lot(org, o):
    harvest = _latest(Harvest, org, o["harvest"]) if o["harvest"] else None
    lot = services.lot_create(organisation=org, product=o["product"], strain=o["strain"], weight_grams=o["weight"],
                              location=o["location"], source_harvest=harvest)
    return f"Created lot {lot.code}: {lot.product}, {lot.weight_grams} g in {lot.location}."


def transfer_lot(org, o):
    lot = _lot_for(org, o["lot"])
    t = services.lot_transfer(lot=lot, to_location=o["to"], transferred_by=o["user"])
    return f"Moved lot {lot.code} from {t.from_location} to {t.to_location}."


def create_order(org, o):
    order = services.order_create(organisation=org, customer=o["customer"], lines=[(o["sku"], o["quantity"], "8.75")])
    return f"Created order {order.code} for {order.customer}."


def ship_order(org, o):
    order = _latest(Order, org, o["order"])
    if o["order"] is None:
        order = Order.objects.filter(
            organisation=org, status__in=[Order.Status.APPROVED, Order.Status.PICKING, Order.Status.PACKED]
        ).order_by("created_at", "id").first()
    if order is None:
        order = services.order_create(organisation=org, customer="Ontario Cannabis Store",
                                      lines=[("BD-3.5G", 100, "8.75")])
    lot = _lot_for(org, o["lot"])
    tracking = f"PUR{timezone.now():%Y%m%d%H%M%S}CA"
    s = services.shipment_ship(order=order, lots=[lot], carrier=o["carrier"], tracking_number=tracking,
                               shipped_by=o["user"])
    return f"Shipped order {order.code} as {s.code} ({s.carrier}, tracking {s.tracking_number})."


def deliver_shipment(org, o):
    shipment = _latest(Shipment, org, o["shipment"], delivered_at__isnull=True)
    if shipment is None:
        raise CommandError("No shipment on its way: run `manage.py demo ship-order` first.")
    services.shipment_deliver(shipment=shipment, received_by=o["received_by"])
    return f"Delivered shipment {shipment.code} of order {shipment.order.code}."


def create_sample(org, o):
    lot = _lot_for(org, o["lot"])
    s = services.sample_create(lot=lot, weight_grams="10", lab=o["lab"], tests=["potency", "microbial"])
    return f"Drew sample {s.code} of 10 g from lot {lot.code} for {s.lab}."


def record_lab_results(org, o):
    sample = _latest(LabSample, org, o["sample"], results_received_at__isnull=True)
    if sample is None:
        raise CommandError("No sample awaits results: run `manage.py demo create-sample` first.")
    result = "fail" if o["fail"] else "pass"
    services.lab_results_record(sample=sample, thc_percent=22.4, cbd_percent=0.3, microbial=result,
                                heavy_metals="pass")
    return f"Recorded lab results for sample {sample.code}: {'failed' if o['fail'] else 'passed'}."


ACTIONS = {
    "create-batch": (create_batch, "start a plant batch (batch.created)"),
    "record-harvest": (record_harvest, "harvest the latest batch (harvest.recorded)"),
    "create-lot": (create_lot, "create a lot of inventory (lot.created)"),
    "transfer-lot": (transfer_lot, "move the latest lot (lot.transferred)"),
    "create-order": (create_order, "enter a customer order (order.created)"),
    "ship-order": (ship_order, "ship the oldest open order (order.status_changed, shipment.shipped)"),
    "deliver-shipment": (deliver_shipment, "mark the latest shipment delivered (shipment.delivered)"),
    "create-sample": (create_sample, "draw a lab sample from the latest lot (sample.created)"),
    "record-lab-results": (record_lab_results, "record results for the latest sample (lab_results.received)"),
}


class Command(BaseCommand):
    help = "Act in the demo cultivation business and print the webhook events it records."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for name, (_, help_text) in ACTIONS.items():
            p = actions.add_parser(name, help=help_text)
            p.add_argument("--org", default="demo", help="organisation slug [demo]")
            p.add_argument("--user", default="demo.user", help="who does it [demo.user]")
            if name in ("create-batch", "record-harvest", "create-lot"):
                p.add_argument("--strain", default="Blue Dream")
            if name == "create-batch":
                p.add_argument("--plants", type=int, default=120)
                p.add_argument("--room", default="Flower Room 2")
            if name == "record-harvest":
                p.add_argument("--batch", help="batch code [the latest]")
                p.add_argument("--weight", default="24000", help="wet weight in grams")
            if name == "create-lot":
                p.add_argument("--product", default="Dried Flower - Blue Dream")
                p.add_argument("--weight", default="1000", help="grams")
                p.add_argument("--location", default="Vault A")
                p.add_argument("--harvest", help="source harvest code")
            if name in ("transfer-lot", "ship-order", "create-sample"):
                p.add_argument("--lot", help="lot code [the latest]")
            if name == "transfer-lot":
                p.add_argument("--to", default="Packaging Room")
            if name == "create-order":
                p.add_argument("--customer", default="Ontario Cannabis Store")
                p.add_argument("--sku", default="BD-3.5G")
                p.add_argument("--quantity", type=int, default=100)
            if name == "ship-order":
                p.add_argument("--order", help="order number [the oldest open one]")
                p.add_argument("--carrier", default="Purolator")
            if name == "deliver-shipment":
                p.add_argument("--shipment", help="shipment code [the latest]")
                p.add_argument("--received-by", default="OCS Receiving Dock 2")
            if name == "create-sample":
                p.add_argument("--lab", default="Keystone Labs")
            if name == "record-lab-results":
                p.add_argument("--sample", help="sample code [the latest awaiting results]")
                p.add_argument("--fail", action="store_true", help="record a failed microbial test")

    def handle(self, *args, action, org, **options):
        organisation = Organisation.objects.filter(slug=org).first()
        if organisation is None:
            raise CommandError(f"No organisation with slug {org!r}.")
        started = timezone.now()
        try:
            summary = ACTIONS[action][0](organisation, options)
        except DemoError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(summary)
        events = Event.objects.filter(organisation=organisation, created_at__gte=started).order_by("created_at")
        for event in events:
            count = event.deliveries.count()
            to = f"{count} webhook deliver{'y' if count == 1 else 'ies'} queued" if count else \
                "no webhook subscribes to this type"
            self.stdout.write(f"  {event.activity_type:<22} {event.webhook_id}  {to}")
