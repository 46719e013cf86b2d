"""Celery tasks of subscriptions: a thin interface to a service."""

from celery import shared_task

from subscriptions import services


@shared_task(name="subscriptions.tasks.forget_expired_old_secrets", ignore_result=True)
def forget_expired_old_secrets() -> int:
    return services.subscription_old_secrets_forget()
