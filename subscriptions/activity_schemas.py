"""JSON Schemas (draft 2020-12) of each activity type's `data` object.

Published on the event catalogue page and in docs/EVENTS.md. The schemas are
open (unknown properties are allowed) so that receivers that validate with
them keep working when a type gains an optional field; every listed property
that is `required` is always present.
"""

from jsonschema import Draft202012Validator

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_PATTERN = r"^[A-Z0-9][A-Z0-9-]*$"
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def _str(description: str, **extra) -> dict:
    return {"type": "string", "description": description, **extra}


def _id(description: str) -> dict:
    return _str(description, pattern=ID_PATTERN)


def _ids(description: str) -> dict:
    return {"type": "array", "description": description, "items": {"type": "string", "pattern": ID_PATTERN},
            "minItems": 1}


def _grams(description: str, *, signed: bool = False) -> dict:
    return {"type": "number", "description": description} | ({} if signed else {"minimum": 0})


def _count(description: str) -> dict:
    return {"type": "integer", "description": description, "minimum": 0}


def _date(description: str) -> dict:
    return _str(description, format="date")


def _person(description: str) -> dict:
    return _str(description, minLength=1)


def _object(code: str, properties: dict, *, optional: tuple[str, ...] = ()) -> dict:
    return {
        "$schema": DIALECT,
        "title": f"{code} data",
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }


_STATUSES = ["draft", "approved", "picking", "packed", "shipped", "delivered", "cancelled"]

SCHEMAS: dict[str, dict] = {
    # Cultivation
    "batch.created": _object("batch.created", {
        "batch_id": _id("Batch identifier."),
        "strain": _str("Strain name."),
        "plant_count": _count("Plants in the batch."),
        "room": _str("Grow room the batch starts in."),
        "source": _str("Where the plants come from.", enum=["clones", "seeds", "mother plants"]),
        "started_on": _date("Day the batch started."),
    }),
    "harvest.recorded": _object("harvest.recorded", {
        "harvest_id": _id("Harvest identifier."),
        "batch_id": _id("Batch harvested."),
        "strain": _str("Strain name."),
        "plant_count": _count("Plants harvested."),
        "wet_weight_grams": _grams("Wet weight in grams."),
        "harvested_on": _date("Day of the harvest."),
    }),
    "drying.completed": _object("drying.completed", {
        "harvest_id": _id("Harvest that was dried."),
        "dry_weight_grams": _grams("Dry weight in grams."),
        "moisture_loss_percent": {"type": "number", "minimum": 0, "maximum": 100,
                                  "description": "Weight lost while drying, in percent of the wet weight."},
        "drying_room": _str("Drying room."),
        "completed_on": _date("Day drying finished."),
    }),
    "curing.completed": _object("curing.completed", {
        "harvest_id": _id("Harvest that was cured."),
        "cured_weight_grams": _grams("Weight after curing, in grams."),
        "cure_days": _count("Days of curing."),
        "completed_on": _date("Day curing finished."),
    }),
    # Inventory
    "lot.created": _object("lot.created", {
        "lot_id": _id("Lot identifier."),
        "product": _str("Product name."),
        "strain": _str("Strain name."),
        "weight_grams": _grams("Weight of the lot in grams."),
        "source_harvest_id": {"type": ["string", "null"], "pattern": ID_PATTERN,
                              "description": "Harvest the lot comes from; null for production runs and receipts."},
        "location": _str("Where the lot is stored."),
    }),
    "lot.transferred": _object("lot.transferred", {
        "lot_id": _id("Lot moved."),
        "from_location": _str("Location before the move."),
        "to_location": _str("Location after the move."),
        "weight_grams": _grams("Weight moved, in grams."),
        "transferred_by": _person("User who moved it."),
    }),
    "lot.weight_adjusted": _object("lot.weight_adjusted", {
        "lot_id": _id("Lot adjusted."),
        "previous_weight_grams": _grams("Weight before, in grams."),
        "new_weight_grams": _grams("Weight after, in grams."),
        "adjustment_grams": _grams("new - previous, in grams (negative for a loss).", signed=True),
        "reason": _str("Why the weight changed.", minLength=1),
    }),
    "destruction.queued": _object("destruction.queued", {
        "destruction_id": _id("Destruction identifier."),
        "lot_id": _id("Lot the material comes from."),
        "weight_grams": _grams("Weight to destroy, in grams."),
        "reason": _str("Why it is destroyed."),
        "method": _str("How it will be destroyed."),
    }),
    "destruction.completed": _object("destruction.completed", {
        "destruction_id": _id("Destruction identifier."),
        "lot_id": _id("Lot the material came from."),
        "weight_grams": _grams("Weight destroyed, in grams."),
        "witnesses": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                      "description": "Users who witnessed the destruction."},
        "completed_on": _date("Day of the destruction."),
    }),
    # Orders & Shipments
    "order.created": _object("order.created", {
        "order_number": _id("Order number."),
        "customer": _str("Customer name."),
        "lines": {
            "type": "array", "minItems": 1, "description": "Ordered products.",
            "items": {
                "type": "object",
                "properties": {
                    "sku": _str("Stock keeping unit."),
                    "quantity": {"type": "integer", "minimum": 1, "description": "Units ordered."},
                    "unit_price": _str("Price per unit, a decimal string.", pattern=DECIMAL_PATTERN),
                },
                "required": ["sku", "quantity", "unit_price"],
            },
        },
        "total": _str("Order total, a decimal string.", pattern=DECIMAL_PATTERN),
        "currency": _str("ISO 4217 currency code.", pattern="^[A-Z]{3}$"),
    }),
    "order.status_changed": _object("order.status_changed", {
        "order_number": _id("Order number."),
        "previous_status": _str("Status before.", enum=_STATUSES),
        "status": _str("Status now.", enum=_STATUSES),
        "changed_by": _person("User who changed it."),
    }),
    "shipment.shipped": _object("shipment.shipped", {
        "shipment_id": _id("Shipment identifier."),
        "order_number": _id("Order shipped."),
        "carrier": _str("Carrier."),
        "tracking_number": _str("Carrier's tracking number."),
        "lots": _ids("Lots in the shipment."),
        "weight_grams": _grams("Shipped weight in grams."),
    }),
    "shipment.delivered": _object("shipment.delivered", {
        "shipment_id": _id("Shipment identifier."),
        "order_number": _id("Order delivered."),
        "delivered_at": _str("When it was delivered (ISO 8601, UTC).", format="date-time"),
        "received_by": _str("Who received it."),
    }),
    # Quality & Compliance
    "sample.created": _object("sample.created", {
        "sample_id": _id("Sample identifier."),
        "lot_id": _id("Lot sampled."),
        "weight_grams": _grams("Sample weight in grams."),
        "lab": _str("Lab the sample goes to."),
        "tests": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "Tests requested."},
    }),
    "lab_results.received": _object("lab_results.received", {
        "sample_id": _id("Sample tested."),
        "lot_id": _id("Lot the sample came from."),
        "lab": _str("Lab that tested it."),
        "passed": {"type": "boolean", "description": "Whether every test passed."},
        "thc_percent": {"type": "number", "minimum": 0, "maximum": 100, "description": "Total THC, percent."},
        "cbd_percent": {"type": "number", "minimum": 0, "maximum": 100, "description": "Total CBD, percent."},
        "microbial": _str("Microbial result.", enum=["pass", "fail"]),
        "heavy_metals": _str("Heavy metals result.", enum=["pass", "fail"]),
    }),
    "capa.opened": _object("capa.opened", {
        "capa_id": _id("CAPA identifier."),
        "title": _str("What the CAPA is about."),
        "severity": _str("Severity.", enum=["minor", "major", "critical"]),
        "owner": _person("User responsible."),
        "due_on": _date("Due date."),
    }),
    "deviation.recorded": _object("deviation.recorded", {
        "deviation_id": _id("Deviation identifier."),
        "sop": _id("Standard operating procedure deviated from."),
        "description": _str("What happened."),
        "batch_id": {"type": ["string", "null"], "pattern": ID_PATTERN, "description": "Batch concerned, if any."},
        "recorded_by": _person("User who recorded it."),
    }),
    "recall.initiated": _object("recall.initiated", {
        "recall_id": _id("Recall identifier."),
        "lots": _ids("Lots recalled."),
        "recall_class": _str("Recall class.", enum=["Type I", "Type II", "Type III"]),
        "reason": _str("Why the lots are recalled."),
        "customers_notified": _count("Customers notified so far."),
    }),
    # Plant Care
    "pesticide.applied": _object("pesticide.applied", {
        "batch_id": _id("Batch treated."),
        "product": _str("Pesticide product."),
        "pcp_number": _str("Pest Control Products registration number."),
        "quantity_ml": _grams("Quantity applied, in millilitres."),
        "applied_by": _person("User who applied it."),
        "reentry_interval_hours": _count("Hours before people may re-enter the room."),
    }),
    "fertiliser.applied": _object("fertiliser.applied", {
        "batch_id": _id("Batch fed."),
        "product": _str("Fertiliser product."),
        "quantity_ml": _grams("Quantity applied, in millilitres."),
        "ec": {"type": "number", "minimum": 0, "description": "Electrical conductivity of the feed, mS/cm."},
        "ph": {"type": "number", "minimum": 0, "maximum": 14, "description": "pH of the feed."},
    }),
    "cuttings.propagated": _object("cuttings.propagated", {
        "mother_batch_id": _id("Mother plants' batch."),
        "strain": _str("Strain name."),
        "cutting_count": _count("Cuttings taken."),
        "propagation_room": _str("Room the cuttings go to."),
    }),
    "seeds.germinated": _object("seeds.germinated", {
        "seed_lot_id": _id("Seed lot."),
        "strain": _str("Strain name."),
        "seeds_sown": _count("Seeds sown."),
        "seeds_germinated": _count("Seeds that germinated."),
    }),
    # Production
    "crude_extraction.recorded": _object("crude_extraction.recorded", {
        "run_id": _id("Extraction run identifier."),
        "input_lots": _ids("Lots extracted."),
        "input_weight_grams": _grams("Input weight in grams."),
        "crude_weight_grams": _grams("Crude oil obtained, in grams."),
        "method": _str("Extraction method (ethanol, CO2, hydrocarbon...)."),
    }),
    "distillation.recorded": _object("distillation.recorded", {
        "run_id": _id("Distillation run identifier."),
        "input_run_id": _id("Extraction run distilled."),
        "input_weight_grams": _grams("Input weight in grams."),
        "distillate_weight_grams": _grams("Distillate obtained, in grams."),
        "thc_percent": {"type": "number", "minimum": 0, "maximum": 100, "description": "THC of the distillate."},
    }),
    "final_product_weights.recorded": _object("final_product_weights.recorded", {
        "lot_id": _id("Lot of finished product."),
        "product": _str("Product name."),
        "units": _count("Units packaged."),
        "net_weight_grams_per_unit": _grams("Net weight of one unit, in grams."),
        "total_weight_grams": _grams("Net weight of all units, in grams."),
    }),
}


def schema_for(code: str) -> dict | None:
    """Return the JSON Schema of that type's `data`, or None for an unknown code."""
    return SCHEMAS.get(code)


def _closed(schema: dict) -> dict:
    """Return a copy where every object with properties forbids undeclared ones."""
    if isinstance(schema, dict):
        copy = {k: _closed(v) for k, v in schema.items()}
        if "properties" in copy:
            copy["properties"] = {k: _closed(v) for k, v in schema["properties"].items()}
            copy.setdefault("additionalProperties", False)
        return copy
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


def data_validator(code: str, *, closed: bool = False):
    """Return a jsonschema validator (formats checked) for that type's `data`.

    closed=True also refuses properties the schema does not declare: our own
    samples and domain code use it, so that the published schemas keep up.
    """
    schema = SCHEMAS[code]
    return Draft202012Validator(_closed(schema) if closed else schema,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)
