"""Celery tasks: a thin interface that takes an id and calls a service."""

import logging

from celery import shared_task

from delivery import charts, retention, sender, wakeups
from delivery.models import Delivery

logger = logging.getLogger(__name__)


@shared_task(name="delivery.tasks.send_endpoint", ignore_result=True)
def send_endpoint(subscription_id: str, helper: bool = False) -> int:
    return sender.endpoint_send(subscription_id=subscription_id, helper=helper)


@shared_task(name="delivery.tasks.deliver", ignore_result=True)
def deliver(delivery_id: str) -> int:
    # Messages of the version before endpoint wake-ups (one per delivery), during a rolling deploy.
    subscription_id = Delivery.objects.filter(id=delivery_id).values_list("subscription_id", flat=True).first()
    return 0 if subscription_id is None else sender.endpoint_send(subscription_id=subscription_id)


@shared_task(name="delivery.tasks.sweep_due_deliveries", ignore_result=True)
def sweep_due_deliveries() -> int:
    return wakeups.endpoints_sweep()


@shared_task(name="delivery.tasks.prune_old_deliveries", ignore_result=True)
def prune_old_deliveries() -> dict:
    try:
        return retention.deliveries_prune()
    except retention.PruneRunning as running:  # the next hourly run goes on where that one ends
        logger.info("%s", running)
        return {}


@shared_task(name="delivery.tasks.summarise_closed_hours", ignore_result=True)
def summarise_closed_hours() -> int:
    return charts.closed_hours_summarise()
