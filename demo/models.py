"""A few records of a cultivation business: batches, harvests, lots, orders, shipments, lab samples.

Fields and constraints only; the work (and the activities it records) is in services.py.
"""

from django.db import models

from organisations.models import Organisation


class _Coded(models.Model):
    """A record with a human code unique within its organisation (BATCH-2026-0001...)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code"], name="%(app_label)s_%(class)s_unique_code"),
        ]

    def __str__(self) -> str:
        return self.code


class Batch(_Coded):
    strain = models.CharField(max_length=100)
    plant_count = models.PositiveIntegerField()
    room = models.CharField(max_length=100)
    source = models.CharField(max_length=20, default="clones")
    started_on = models.DateField()

    class Meta(_Coded.Meta):
        verbose_name_plural = "batches"


class Harvest(_Coded):
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="harvests")
    plant_count = models.PositiveIntegerField()
    wet_weight_grams = models.DecimalField(max_digits=12, decimal_places=1)
    harvested_on = models.DateField()


class Lot(_Coded):
    product = models.CharField(max_length=200)
    strain = models.CharField(max_length=100)
    weight_grams = models.DecimalField(max_digits=12, decimal_places=1)
    location = models.CharField(max_length=100)
    source_harvest = models.ForeignKey(Harvest, on_delete=models.PROTECT, null=True, blank=True, related_name="lots")


class LotTransfer(models.Model):
    lot = models.ForeignKey(Lot, on_delete=models.CASCADE, related_name="transfers")
    from_location = models.CharField(max_length=100)
    to_location = models.CharField(max_length=100)
    weight_grams = models.DecimalField(max_digits=12, decimal_places=1)
    transferred_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.lot} {self.from_location} -> {self.to_location}"


class Order(_Coded):
    class Status(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved"
        PICKING = "picking"
        PACKED = "packed"
        SHIPPED = "shipped"
        DELIVERED = "delivered"
        CANCELLED = "cancelled"

    customer = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.APPROVED)
    currency = models.CharField(max_length=3, default="CAD")


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class Shipment(_Coded):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="shipments")
    carrier = models.CharField(max_length=100)
    tracking_number = models.CharField(max_length=100)
    lots = models.ManyToManyField(Lot, related_name="shipments")
    weight_grams = models.DecimalField(max_digits=12, decimal_places=1)
    shipped_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    received_by = models.CharField(max_length=200, blank=True)


class LabSample(_Coded):
    class Result(models.TextChoices):
        PASS = "pass"
        FAIL = "fail"

    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="samples")
    weight_grams = models.DecimalField(max_digits=8, decimal_places=1)
    lab = models.CharField(max_length=200)
    tests = models.JSONField(default=list)
    thc_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    cbd_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    microbial = models.CharField(max_length=4, choices=Result.choices, blank=True)
    heavy_metals = models.CharField(max_length=4, choices=Result.choices, blank=True)
    results_received_at = models.DateTimeField(null=True, blank=True)

    @property
    def passed(self) -> bool:
        return self.microbial == self.Result.PASS and self.heavy_metals == self.Result.PASS
