from django.db import models


class Heartbeat(models.Model):
    """When a role (the worker, the scheduler) last showed it was alive; one row per role."""

    class Role(models.TextChoices):
        WORKER = "worker", "Celery worker"
        SCHEDULER = "scheduler", "Celery beat"

    role = models.CharField(max_length=16, choices=Role.choices, primary_key=True)
    seen_at = models.DateTimeField()
    # The host name of the process that wrote it last (any one of them proves the role alive).
    hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.role} seen {self.seen_at:%Y-%m-%d %H:%M:%S} on {self.hostname}"
