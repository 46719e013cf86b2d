"""Celery tasks of operations: the worker's heartbeat."""

from celery import shared_task

from operations.heartbeat import HEARTBEAT_TASK, heartbeat_record
from operations.models import Heartbeat


@shared_task(name=HEARTBEAT_TASK, ignore_result=True)
def heartbeat() -> None:
    heartbeat_record(role=Heartbeat.Role.WORKER)
