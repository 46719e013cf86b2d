"""The activity-type catalogue: codes, the seed's labels, categories, samples.

This is the one place that knows which activity types exist. Pages, forms,
commands, validation and the event docs all read it.
"""

from dataclasses import dataclass, field

from subscriptions.activity_schemas import schema_for


@dataclass(frozen=True)
class ActivityType:
    code: str
    label: str
    category: str
    description: str
    sample: dict = field(hash=False, compare=False)

    @property
    def schema(self) -> dict:
        """Return the JSON Schema of this type's `data` (see activity_schemas)."""
        return schema_for(self.code)


CULTIVATION = "Cultivation"
INVENTORY = "Inventory"
ORDERS = "Orders & Shipments"
QUALITY = "Quality & Compliance"
PLANT_CARE = "Plant Care"
PRODUCTION = "Production"

CATEGORIES = (CULTIVATION, INVENTORY, ORDERS, QUALITY, PLANT_CARE, PRODUCTION)

_TYPES = (
    # Cultivation
    ActivityType(
        "batch.created", "Batch created", CULTIVATION,
        "A new plant batch is started in a grow room.",
        {"batch_id": "BATCH-2026-0412", "strain": "Blue Dream", "plant_count": 240,
         "room": "Flower Room 3", "source": "clones", "started_on": "2026-04-12"},
    ),
    ActivityType(
        "harvest.recorded", "Harvest recorded", CULTIVATION,
        "Plants of a batch are harvested and the wet weight is recorded.",
        {"harvest_id": "HRV-2026-0188", "batch_id": "BATCH-2026-0412", "strain": "Blue Dream",
         "plant_count": 236, "wet_weight_grams": 48210.5, "harvested_on": "2026-06-30"},
    ),
    ActivityType(
        "drying.completed", "Drying complete", CULTIVATION,
        "A harvest leaves the drying room with its dry weight.",
        {"harvest_id": "HRV-2026-0188", "dry_weight_grams": 11204.0, "moisture_loss_percent": 76.8,
         "drying_room": "Dry Room 1", "completed_on": "2026-07-11"},
    ),
    ActivityType(
        "curing.completed", "Curing complete", CULTIVATION,
        "A harvest finishes curing and is ready to become lots.",
        {"harvest_id": "HRV-2026-0188", "cured_weight_grams": 10988.2, "cure_days": 21,
         "completed_on": "2026-08-01"},
    ),
    # Inventory
    ActivityType(
        "lot.created", "Lot created", INVENTORY,
        "A lot of inventory is created (from a harvest, a production run or a receipt).",
        {"lot_id": "LOT-2026-001734", "product": "Dried Flower - Blue Dream", "strain": "Blue Dream",
         "weight_grams": 5000.0, "source_harvest_id": "HRV-2026-0188", "location": "Vault A"},
    ),
    ActivityType(
        "lot.transferred", "Lot transferred", INVENTORY,
        "A lot moves from one location to another.",
        {"lot_id": "LOT-2026-001734", "from_location": "Vault A", "to_location": "Packaging Room",
         "weight_grams": 5000.0, "transferred_by": "j.tremblay"},
    ),
    ActivityType(
        "lot.weight_adjusted", "Weight adjusted", INVENTORY,
        "A lot's recorded weight is corrected, with the reason.",
        {"lot_id": "LOT-2026-001734", "previous_weight_grams": 5000.0, "new_weight_grams": 4987.4,
         "adjustment_grams": -12.6, "reason": "moisture loss"},
    ),
    ActivityType(
        "destruction.queued", "Destruction queued", INVENTORY,
        "Material is set aside for destruction and awaits witnesses.",
        {"destruction_id": "DST-2026-0057", "lot_id": "LOT-2026-001690", "weight_grams": 812.3,
         "reason": "failed microbial testing", "method": "mixed with kitty litter"},
    ),
    ActivityType(
        "destruction.completed", "Destruction completed", INVENTORY,
        "Queued material is destroyed in front of witnesses.",
        {"destruction_id": "DST-2026-0057", "lot_id": "LOT-2026-001690", "weight_grams": 812.3,
         "witnesses": ["a.singh", "m.roy"], "completed_on": "2026-08-14"},
    ),
    # Orders & Shipments
    ActivityType(
        "order.created", "Order created", ORDERS,
        "A customer order is entered.",
        {"order_number": "SO-10482", "customer": "Ontario Cannabis Store",
         "lines": [{"sku": "BD-3.5G", "quantity": 1200, "unit_price": "8.75"}],
         "total": "10500.00", "currency": "CAD"},
    ),
    ActivityType(
        "order.status_changed", "Order status changed", ORDERS,
        "An order moves to another status (approved, picking, packed, cancelled...).",
        {"order_number": "SO-10482", "previous_status": "approved", "status": "packed",
         "changed_by": "l.nguyen"},
    ),
    ActivityType(
        "shipment.shipped", "Shipment shipped", ORDERS,
        "A shipment leaves the facility.",
        {"shipment_id": "SHP-2026-0311", "order_number": "SO-10482", "carrier": "Purolator",
         "tracking_number": "PUR123456789CA", "lots": ["LOT-2026-001734"], "weight_grams": 4200.0},
    ),
    ActivityType(
        "shipment.delivered", "Shipment delivered", ORDERS,
        "A shipment is marked as delivered to its customer.",
        {"shipment_id": "SHP-2026-0311", "order_number": "SO-10482",
         "delivered_at": "2026-08-20T15:42:00Z", "received_by": "OCS Receiving Dock 2"},
    ),
    # Quality & Compliance
    ActivityType(
        "sample.created", "Sample created", QUALITY,
        "A sample is drawn from a lot for lab testing.",
        {"sample_id": "SMP-2026-0921", "lot_id": "LOT-2026-001734", "weight_grams": 10.0,
         "lab": "Keystone Labs", "tests": ["potency", "microbial", "heavy metals"]},
    ),
    ActivityType(
        "lab_results.received", "Lab results received", QUALITY,
        "A lab's certificate of analysis arrives for a sample.",
        {"sample_id": "SMP-2026-0921", "lot_id": "LOT-2026-001734", "lab": "Keystone Labs",
         "passed": True, "thc_percent": 22.4, "cbd_percent": 0.3,
         "microbial": "pass", "heavy_metals": "pass"},
    ),
    ActivityType(
        "capa.opened", "CAPA opened", QUALITY,
        "A corrective and preventive action is opened.",
        {"capa_id": "CAPA-2026-014", "title": "Humidity excursion in Dry Room 1",
         "severity": "major", "owner": "qa.lead", "due_on": "2026-09-15"},
    ),
    ActivityType(
        "deviation.recorded", "Deviation recorded", QUALITY,
        "A deviation from a standard operating procedure is recorded.",
        {"deviation_id": "DEV-2026-033", "sop": "SOP-CULT-007", "description": "Irrigation skipped",
         "batch_id": "BATCH-2026-0412", "recorded_by": "g.martin"},
    ),
    ActivityType(
        "recall.initiated", "Recall initiated", QUALITY,
        "A product recall is started for one or more lots.",
        {"recall_id": "RCL-2026-002", "lots": ["LOT-2026-001690"], "recall_class": "Type II",
         "reason": "mislabelled THC content", "customers_notified": 3},
    ),
    # Plant Care
    ActivityType(
        "pesticide.applied", "Pesticide applied", PLANT_CARE,
        "A pesticide application is recorded for a batch.",
        {"batch_id": "BATCH-2026-0412", "product": "Neem oil", "pcp_number": "30479",
         "quantity_ml": 750.0, "applied_by": "g.martin", "reentry_interval_hours": 4},
    ),
    ActivityType(
        "fertiliser.applied", "Fertiliser applied", PLANT_CARE,
        "A fertiliser feed is recorded for a batch.",
        {"batch_id": "BATCH-2026-0412", "product": "Bloom 2-6-4", "quantity_ml": 12000.0,
         "ec": 1.8, "ph": 6.1},
    ),
    ActivityType(
        "cuttings.propagated", "Cuttings propagated", PLANT_CARE,
        "Cuttings are taken from mother plants.",
        {"mother_batch_id": "MOM-2026-003", "strain": "Blue Dream", "cutting_count": 260,
         "propagation_room": "Clone Room"},
    ),
    ActivityType(
        "seeds.germinated", "Seeds germinated", PLANT_CARE,
        "Seeds of a seed lot germinate.",
        {"seed_lot_id": "SEED-2026-021", "strain": "Northern Lights", "seeds_sown": 100,
         "seeds_germinated": 94},
    ),
    # Production
    ActivityType(
        "crude_extraction.recorded", "Crude extraction recorded", PRODUCTION,
        "A crude extraction run is recorded.",
        {"run_id": "EXT-2026-0045", "input_lots": ["LOT-2026-001512"], "input_weight_grams": 20000.0,
         "crude_weight_grams": 2410.7, "method": "ethanol"},
    ),
    ActivityType(
        "distillation.recorded", "Distillation recorded", PRODUCTION,
        "A distillation run is recorded.",
        {"run_id": "DST-RUN-2026-0019", "input_run_id": "EXT-2026-0045", "input_weight_grams": 2410.7,
         "distillate_weight_grams": 1602.3, "thc_percent": 91.2},
    ),
    ActivityType(
        "final_product_weights.recorded", "Final product weights recorded", PRODUCTION,
        "Final packaged product weights are recorded for a lot.",
        {"lot_id": "LOT-2026-001801", "product": "Blue Dream Vape 0.5g", "units": 3200,
         "net_weight_grams_per_unit": 0.5, "total_weight_grams": 1600.0},
    ),
)

ACTIVITY_TYPES: dict[str, ActivityType] = {t.code: t for t in _TYPES}


def get_activity_type(code: str) -> ActivityType | None:
    """Return the type with that code, or None."""
    return ACTIVITY_TYPES.get(code)


def by_category() -> list[tuple[str, list[ActivityType]]]:
    """Return the types grouped by the seed's six categories, in the seed's order."""
    return [(category, [t for t in _TYPES if t.category == category]) for category in CATEGORIES]


def choices() -> list[tuple[str, str]]:
    return [(t.code, t.label) for t in _TYPES]
