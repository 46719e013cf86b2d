from django.db import migrations, models


def keep_last_failures(apps, schema_editor):
    """Fill in the new fields of the records of failing endpoints from their latest attempt (as the sender now
    writes them with each failure)."""
    EndpointHealth = apps.get_model("delivery", "EndpointHealth")
    Attempt = apps.get_model("delivery", "Attempt")
    kinds = dict(Attempt._meta.get_field("error_kind").choices)
    for record in EndpointHealth.objects.filter(failing_since__isnull=False, consecutive_failures__gt=0):
        attempt = (Attempt.objects.filter(delivery__subscription_id=record.subscription_id,
                                          started_at__gte=record.failing_since)
                   .order_by("-started_at", "-id").first())
        if attempt is None:
            continue
        if attempt.status_code is not None:
            record.last_error = f"HTTP {attempt.status_code}"
        else:
            record.last_error = attempt.error_message or str(kinds.get(attempt.error_kind, attempt.error_kind))
        record.last_failed_at = attempt.started_at
        record.save(update_fields=["last_error", "last_failed_at"])


class Migration(migrations.Migration):

    dependencies = [
        ("delivery", "0011_delivery_failed_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="endpointhealth",
            name="last_error",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="endpointhealth",
            name="last_failed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(keep_last_failures, migrations.RunPython.noop),
    ]
