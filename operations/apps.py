from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Health checks, heartbeats, /metrics and log formatting: what an operator watches."""

    name = "operations"

    def ready(self):
        from celery.signals import before_task_publish

        from operations.heartbeat import scheduler_published

        before_task_publish.connect(scheduler_published, dispatch_uid="operations.scheduler_published")
