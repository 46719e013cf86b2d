"""The demo domain's writes. Each one records its activity in the same transaction.

This is how a real domain app uses webhooks: change its own rows, then call
`record_activity` before the transaction commits, so the outbox row and the
domain change are committed (or rolled back) together.
"""

from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from demo.exceptions import DemoError
from demo.models import Batch, Harvest, LabSample, Lot, LotTransfer, Order, OrderLine, Shipment
from subscriptions.activity import record_activity

_TRANSITIONS = {
    Order.Status.DRAFT: {Order.Status.APPROVED, Order.Status.CANCELLED},
    Order.Status.APPROVED: {Order.Status.PICKING, Order.Status.CANCELLED},
    Order.Status.PICKING: {Order.Status.PACKED, Order.Status.CANCELLED},
    Order.Status.PACKED: {Order.Status.SHIPPED, Order.Status.CANCELLED},
    Order.Status.SHIPPED: {Order.Status.DELIVERED},
}


def _grams(value) -> float:
    return float(value)


def _positive(value, what: str) -> Decimal:
    number = Decimal(str(value))
    if not number.is_finite() or number <= 0:
        raise DemoError(f"{what} must be a positive number, not {value!r}.")
    return number


def _next_code(model, organisation, prefix: str, *, width: int = 4) -> str:
    year = timezone.now().year
    taken = model.objects.filter(organisation=organisation).count()
    return f"{prefix}-{year}-{taken + 1:0{width}d}"


def _record(obj, activity_type: str, data: dict):
    return record_activity(organisation=obj.organisation, activity_type=activity_type, data=data, sender=type(obj))


# --- Cultivation -----------------------------------------------------------------

def batch_create(*, organisation, strain: str, plant_count: int, room: str, source: str = "clones",
                 started_on: date | None = None) -> Batch:
    """Return a new batch; records batch.created."""
    if plant_count < 1:
        raise DemoError("A batch needs at least one plant.")
    with transaction.atomic():
        batch = Batch.objects.create(
            organisation=organisation, code=_next_code(Batch, organisation, "BATCH"), strain=strain,
            plant_count=plant_count, room=room, source=source, started_on=started_on or timezone.localdate(),
        )
        _record(batch, "batch.created", {
            "batch_id": batch.code, "strain": batch.strain, "plant_count": batch.plant_count,
            "room": batch.room, "source": batch.source, "started_on": batch.started_on.isoformat(),
        })
    return batch


def harvest_record(*, batch: Batch, wet_weight_grams, plant_count: int | None = None,
                   harvested_on: date | None = None) -> Harvest:
    """Return the recorded harvest; records harvest.recorded."""
    weight = _positive(wet_weight_grams, "The wet weight")
    plants = batch.plant_count if plant_count is None else plant_count
    if not 1 <= plants <= batch.plant_count:
        raise DemoError(f"Batch {batch.code} has {batch.plant_count} plants; cannot harvest {plants}.")
    with transaction.atomic():
        harvest = Harvest.objects.create(
            organisation=batch.organisation, code=_next_code(Harvest, batch.organisation, "HRV"), batch=batch,
            plant_count=plants, wet_weight_grams=weight, harvested_on=harvested_on or timezone.localdate(),
        )
        _record(harvest, "harvest.recorded", {
            "harvest_id": harvest.code, "batch_id": batch.code, "strain": batch.strain,
            "plant_count": harvest.plant_count, "wet_weight_grams": _grams(harvest.wet_weight_grams),
            "harvested_on": harvest.harvested_on.isoformat(),
        })
    return harvest


# --- Inventory ---------------------------------------------------------------------

def lot_create(*, organisation, product: str, strain: str, weight_grams, location: str,
               source_harvest: Harvest | None = None) -> Lot:
    """Return a new lot; records lot.created."""
    weight = _positive(weight_grams, "The lot's weight")
    if source_harvest is not None and source_harvest.organisation_id != organisation.pk:
        raise DemoError("The harvest belongs to another organisation.")
    with transaction.atomic():
        lot = Lot.objects.create(
            organisation=organisation, code=_next_code(Lot, organisation, "LOT", width=6), product=product,
            strain=strain, weight_grams=weight, location=location, source_harvest=source_harvest,
        )
        _record(lot, "lot.created", {
            "lot_id": lot.code, "product": lot.product, "strain": lot.strain,
            "weight_grams": _grams(lot.weight_grams),
            "source_harvest_id": source_harvest.code if source_harvest else None, "location": lot.location,
        })
    return lot


def lot_transfer(*, lot: Lot, to_location: str, transferred_by: str) -> LotTransfer:
    """Return the transfer of the whole lot to another location; records lot.transferred."""
    if to_location == lot.location:
        raise DemoError(f"Lot {lot.code} is already in {to_location}.")
    with transaction.atomic():
        transfer = LotTransfer.objects.create(
            lot=lot, from_location=lot.location, to_location=to_location, weight_grams=lot.weight_grams,
            transferred_by=transferred_by,
        )
        lot.location = to_location
        lot.save(update_fields=["location"])
        _record(lot, "lot.transferred", {
            "lot_id": lot.code, "from_location": transfer.from_location, "to_location": transfer.to_location,
            "weight_grams": _grams(transfer.weight_grams), "transferred_by": transferred_by,
        })
    return transfer


def lot_weight_adjust(*, lot: Lot, new_weight_grams, reason: str) -> Lot:
    """Return the lot with its corrected weight; records lot.weight_adjusted."""
    new_weight = Decimal(str(new_weight_grams))
    if not new_weight.is_finite() or new_weight < 0:
        raise DemoError(f"The new weight must be zero or more, not {new_weight_grams!r}.")
    if not reason.strip():
        raise DemoError("A weight adjustment needs a reason.")
    with transaction.atomic():
        previous = lot.weight_grams
        lot.weight_grams = new_weight
        lot.save(update_fields=["weight_grams"])
        _record(lot, "lot.weight_adjusted", {
            "lot_id": lot.code, "previous_weight_grams": _grams(previous), "new_weight_grams": _grams(new_weight),
            "adjustment_grams": _grams(new_weight - previous), "reason": reason,
        })
    return lot


# --- Orders & Shipments ----------------------------------------------------------------

def order_create(*, organisation, customer: str, lines: list[tuple[str, int, str]], currency: str = "CAD") -> Order:
    """Return a new approved order with its lines (sku, quantity, unit price); records order.created."""
    if not lines:
        raise DemoError("An order needs at least one line.")
    taken = Order.objects.filter(organisation=organisation).count()
    with transaction.atomic():
        order = Order.objects.create(organisation=organisation, code=f"SO-{10001 + taken}", customer=customer,
                                     currency=currency)
        for sku, quantity, unit_price in lines:
            if quantity < 1:
                raise DemoError(f"Line {sku}: the quantity must be at least 1.")
            OrderLine.objects.create(order=order, sku=sku, quantity=quantity, unit_price=Decimal(str(unit_price)))
        saved = list(order.lines.order_by("id"))
        total = sum((line.quantity * line.unit_price for line in saved), Decimal("0"))
        _record(order, "order.created", {
            "order_number": order.code, "customer": order.customer,
            "lines": [{"sku": li.sku, "quantity": li.quantity, "unit_price": f"{li.unit_price:.2f}"} for li in saved],
            "total": f"{total:.2f}", "currency": order.currency,
        })
    return order


def order_status_change(*, order: Order, status: str, changed_by: str) -> Order:
    """Return the order in its new status; records order.status_changed. Refuses impossible moves."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        previous = order.status
        if status not in _TRANSITIONS.get(previous, set()):
            raise DemoError(f"Order {order.code} cannot go from {previous} to {status}.")
        order.status = status
        order.save(update_fields=["status"])
        _record(order, "order.status_changed", {
            "order_number": order.code, "previous_status": previous, "status": status, "changed_by": changed_by,
        })
    return order


def shipment_ship(*, order: Order, lots: list[Lot], carrier: str, tracking_number: str, shipped_by: str) -> Shipment:
    """Return the shipment of those lots for the order; moves the order to shipped.

    Records order.status_changed for each step up to `shipped`, then shipment.shipped.
    """
    if not lots:
        raise DemoError("A shipment needs at least one lot.")
    if any(lot.organisation_id != order.organisation_id for lot in lots):
        raise DemoError("Every lot must belong to the order's organisation.")
    steps = {
        Order.Status.APPROVED: (Order.Status.PICKING, Order.Status.PACKED, Order.Status.SHIPPED),
        Order.Status.PICKING: (Order.Status.PACKED, Order.Status.SHIPPED),
        Order.Status.PACKED: (Order.Status.SHIPPED,),
    }.get(order.status)
    if steps is None:
        raise DemoError(f"Order {order.code} is {order.status}; only approved, picking or packed orders ship.")
    with transaction.atomic():
        for step in steps:
            order = order_status_change(order=order, status=step, changed_by=shipped_by)
        shipment = Shipment.objects.create(
            organisation=order.organisation, code=_next_code(Shipment, order.organisation, "SHP"), order=order,
            carrier=carrier, tracking_number=tracking_number, shipped_at=timezone.now(),
            weight_grams=sum((lot.weight_grams for lot in lots), Decimal("0")),
        )
        shipment.lots.set(lots)
        _record(shipment, "shipment.shipped", {
            "shipment_id": shipment.code, "order_number": order.code, "carrier": carrier,
            "tracking_number": tracking_number, "lots": [lot.code for lot in lots],
            "weight_grams": _grams(shipment.weight_grams),
        })
    return shipment


def shipment_deliver(*, shipment: Shipment, received_by: str, delivered_at: datetime | None = None) -> Shipment:
    """Return the delivered shipment; records shipment.delivered, then the order's move to delivered."""
    if shipment.delivered_at is not None:
        raise DemoError(f"Shipment {shipment.code} was already delivered.")
    with transaction.atomic():
        shipment.delivered_at = delivered_at or timezone.now()
        shipment.received_by = received_by
        shipment.save(update_fields=["delivered_at", "received_by"])
        _record(shipment, "shipment.delivered", {
            "shipment_id": shipment.code, "order_number": shipment.order.code,
            "delivered_at": shipment.delivered_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "received_by": received_by,
        })
        order_status_change(order=shipment.order, status=Order.Status.DELIVERED, changed_by=received_by)
    return shipment


# --- Quality & Compliance -----------------------------------------------------------------

def sample_create(*, lot: Lot, weight_grams, lab: str, tests: list[str]) -> LabSample:
    """Return a sample drawn from the lot (its weight leaves the lot); records sample.created."""
    weight = _positive(weight_grams, "The sample's weight")
    if weight > lot.weight_grams:
        raise DemoError(f"Lot {lot.code} holds {lot.weight_grams} g; cannot draw {weight} g.")
    if not tests:
        raise DemoError("Name at least one test.")
    with transaction.atomic():
        sample = LabSample.objects.create(
            organisation=lot.organisation, code=_next_code(LabSample, lot.organisation, "SMP"), lot=lot,
            weight_grams=weight, lab=lab, tests=list(tests),
        )
        lot.weight_grams -= weight
        lot.save(update_fields=["weight_grams"])
        _record(sample, "sample.created", {
            "sample_id": sample.code, "lot_id": lot.code, "weight_grams": _grams(weight), "lab": lab,
            "tests": list(tests),
        })
    return sample


def lab_results_record(*, sample: LabSample, thc_percent, cbd_percent, microbial: str, heavy_metals: str) -> LabSample:
    """Return the sample with its certificate of analysis; records lab_results.received."""
    for value, name in ((microbial, "microbial"), (heavy_metals, "heavy metals")):
        if value not in LabSample.Result.values:
            raise DemoError(f"The {name} result must be pass or fail, not {value!r}.")
    for value, name in ((thc_percent, "THC"), (cbd_percent, "CBD")):
        if not 0 <= float(value) <= 100:
            raise DemoError(f"{name} must be a percentage between 0 and 100, not {value!r}.")
    with transaction.atomic():
        sample.thc_percent = Decimal(str(thc_percent))
        sample.cbd_percent = Decimal(str(cbd_percent))
        sample.microbial = microbial
        sample.heavy_metals = heavy_metals
        sample.results_received_at = timezone.now()
        sample.save()
        _record(sample, "lab_results.received", {
            "sample_id": sample.code, "lot_id": sample.lot.code, "lab": sample.lab, "passed": sample.passed,
            "thc_percent": float(sample.thc_percent), "cbd_percent": float(sample.cbd_percent),
            "microbial": microbial, "heavy_metals": heavy_metals,
        })
    return sample
