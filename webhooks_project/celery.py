"""The Celery application: `celery -A webhooks_project worker|beat`."""

import os

from celery import Celery
from celery.signals import task_postrun, worker_shutting_down

from webhooks_project import embedded_broker, redis_broker

embedded_broker.register()
redis_broker.register()  # a worker survives Redis restarting while it holds messages (see the module)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhooks_project.settings")

app = Celery("webhooks_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A warm shutdown on the embedded broker does not wait out its poll (see the module).
worker_shutting_down.connect(embedded_broker.stop_polling, dispatch_uid="webhooks_embedded_broker_stop_polling")


@task_postrun.connect(dispatch_uid="webhooks_keep_db_connections")
def _close_old_connections(**kwargs) -> None:
    # Celery's Django fix-up would close the connection around every task; with
    # CELERY_DB_REUSE_MAX it leaves that to this: close only broken or expired
    # (CONN_MAX_AGE) connections, so a worker thread keeps one for many deliveries.
    from django.db import close_old_connections

    close_old_connections()
