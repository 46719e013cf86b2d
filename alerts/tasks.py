"""Celery tasks of the alerts: a thin interface to alerts.services."""

from celery import shared_task

from alerts import services


@shared_task(name="alerts.tasks.email_lost_deliveries", ignore_result=True)
def email_lost_deliveries() -> int:
    return services.alerts_lost_send()
