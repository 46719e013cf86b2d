"""The Celery application: `celery -A webhooks_project worker|beat`."""

import os

from celery import Celery

from webhooks_project import embedded_broker

embedded_broker.register()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhooks_project.settings")

app = Celery("webhooks_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
