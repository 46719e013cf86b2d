from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("alerts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="endpointalert",
            name="lost_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="endpointalert",
            name="lost_sent_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
