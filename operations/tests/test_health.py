"""/healthz, /readyz and `manage.py check_health`: what failed is named in the JSON."""

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from operations import heartbeat
from operations.models import Heartbeat
from webhooks_project.celery import app

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _web(web_settings):
    return web_settings


def _beat(role, seconds_ago):
    Heartbeat.objects.update_or_create(role=role, defaults={"seen_at": timezone.now() - timedelta(seconds=seconds_ago)})


@pytest.fixture
def alive():
    _beat(Heartbeat.Role.WORKER, 1)
    _beat(Heartbeat.Role.SCHEDULER, 1)


@pytest.fixture
def broker_down(monkeypatch):
    # Nothing listens on port 1: the broker check must fail fast, not hang. (Celery prefers the
    # environment variable to its configuration, so both are pointed there.)
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")


def test_healthz_answers_while_the_process_runs(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_with_database_broker_worker_and_scheduler(client, alive):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "worker", "scheduler"}
    assert response["Cache-Control"].startswith("max-age=0")


def test_readyz_fails_naming_a_worker_that_has_not_been_seen(client):
    _beat(Heartbeat.Role.SCHEDULER, 1)
    _beat(Heartbeat.Role.WORKER, heartbeat.STALE_AFTER + 5)

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"]["worker"]["ok"] is False
    assert "no worker heartbeat for" in body["checks"]["worker"]["error"]
    assert body["checks"]["scheduler"]["ok"] is True


def test_readyz_fails_when_no_scheduler_was_ever_seen(client):
    _beat(Heartbeat.Role.WORKER, 1)
    body = client.get("/readyz").json()
    assert body["checks"]["scheduler"] == {"ok": False, "seconds_since_seen": None,
                                           "error": "no scheduler heartbeat yet"}


def test_readyz_fails_naming_an_unreachable_broker(client, alive, broker_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] is False
    assert checks["broker"]["error"]
    assert checks["database"]["ok"] is True


def test_readyz_names_an_unreachable_database(client, alive, monkeypatch):
    from django.db import OperationalError

    from operations import readiness

    def refused():
        raise OperationalError("connection to server at \"db\" failed: postgres://app:hunter2@db/x refused")

    monkeypatch.setattr(readiness, "_database", refused)
    body = client.get("/readyz").json()
    assert body["checks"]["database"]["ok"] is False
    assert "hunter2" not in json.dumps(body)  # a password in an error message is masked
    assert body["checks"]["worker"]["error"] == "unknown: the database is unreachable"


def test_check_health_prints_the_same_json_and_exits_0_when_ready(alive, capsys):
    call_command("check_health")
    assert json.loads(capsys.readouterr().out)["status"] == "ok"


def test_check_health_exits_non_zero_naming_what_failed(alive, broker_down, capsys):
    with pytest.raises(CommandError, match="not ready: broker"):
        call_command("check_health")
    assert json.loads(capsys.readouterr().out)["checks"]["broker"]["ok"] is False


def test_only_publishing_the_heartbeat_task_stamps_the_scheduler():
    heartbeat.scheduler_published(sender="delivery.tasks.deliver")
    assert not Heartbeat.objects.exists()

    heartbeat.scheduler_published(sender=heartbeat.HEARTBEAT_TASK)

    assert Heartbeat.objects.get().role == Heartbeat.Role.SCHEDULER


def test_running_the_heartbeat_task_stamps_the_worker():
    from operations.tasks import heartbeat as heartbeat_task

    heartbeat_task()

    assert Heartbeat.objects.get().role == Heartbeat.Role.WORKER
    assert heartbeat.heartbeat_ages()[Heartbeat.Role.WORKER] < 5
