"""Celery tasks: a thin interface that takes an id and calls a service."""

from celery import shared_task
from django.conf import settings

from delivery import batching, retention, services


@shared_task(name="delivery.tasks.deliver", ignore_result=True)
def deliver(delivery_id: str) -> None:
    if settings.WEBHOOKS_BATCHING:
        # With whatever else of its endpoint is due (one by one off PostgreSQL).
        batching.delivery_send(delivery_id=delivery_id)
    else:
        services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="delivery.tasks.sweep_due_deliveries", ignore_result=True)
def sweep_due_deliveries() -> int:
    return services.deliveries_sweep()


@shared_task(name="delivery.tasks.prune_old_deliveries", ignore_result=True)
def prune_old_deliveries() -> dict:
    return retention.deliveries_prune()
