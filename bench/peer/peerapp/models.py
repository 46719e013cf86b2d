from django.db import models


class Lot(models.Model):
    """A domain row; django-webhook sends one webhook per save."""

    lot_code = models.CharField(max_length=64)
    weight_grams = models.FloatField()
    strain = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.lot_code
