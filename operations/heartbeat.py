"""Heartbeats: the scheduler and a worker each leave a timestamp in the database every few seconds.

Celery beat sends `operations.tasks.heartbeat` every few seconds (settings.CELERY_BEAT_SCHEDULE);
sending it stamps the scheduler's row (a before_task_publish receiver, so only
the process that publishes this task, beat, writes it), and the worker that runs
it stamps the worker's row. A row older than STALE_AFTER means that role is gone.
The database is used rather than Celery's remote control so that the check
works on every broker we ship, from any web process, without a round trip to workers.
"""

import socket

from django.utils import timezone

from operations.models import Heartbeat

HEARTBEAT_TASK = "operations.tasks.heartbeat"
# Six missed beats (one every 5 s): a worker busy with a slow batch still answers well within this.
STALE_AFTER = 30.0


def heartbeat_record(*, role: str) -> None:
    """Stamp a role's row with now and this host."""
    Heartbeat.objects.update_or_create(
        role=role, defaults={"seen_at": timezone.now(), "hostname": socket.gethostname()[:255]}
    )


def heartbeat_ages() -> dict[str, float | None]:
    """Return seconds since each role was last seen (None: never)."""
    now = timezone.now()
    seen = dict(Heartbeat.objects.values_list("role", "seen_at"))
    return {role: (now - seen[role]).total_seconds() if role in seen else None for role in Heartbeat.Role.values}


def heartbeat_is_fresh(age: float | None) -> bool:
    return age is not None and age <= STALE_AFTER


def scheduler_published(sender=None, **kwargs) -> None:
    """before_task_publish receiver: sending the heartbeat task is the scheduler's heartbeat."""
    if sender == HEARTBEAT_TASK:
        heartbeat_record(role=Heartbeat.Role.SCHEDULER)


class HeartbeatCollector:
    """Prometheus gauge: seconds since each role's heartbeat (alert when it passes STALE_AFTER)."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily("webhooks_heartbeat_age_seconds",
                                  "Seconds since the role's last heartbeat (+Inf: never seen).", labels=["role"])
        for role, age in heartbeat_ages().items():
            gauge.add_metric([role], float("inf") if age is None else age)
        yield gauge
