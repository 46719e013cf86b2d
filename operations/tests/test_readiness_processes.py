"""/readyz against real processes: it fails when the worker stops and recovers when it restarts."""

import pytest

from conftest import WORKER_ARGS, wait_until
from operations import heartbeat
from operations.models import Heartbeat

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


TOKEN = "metrics-token-for-tests-0123456789"


def _readyz(client):
    """GET /readyz with the metrics token: the details of each check."""
    response = client.get("/readyz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return response.status_code, response.json()


def test_readyz_fails_while_the_worker_is_stopped_and_recovers_when_it_restarts(
    require_services, client, web_settings, monkeypatch, celery_process, worker
):
    # Heartbeats every 5 s: 12 s without one is "gone" (the default, 30 s, only makes the test slower).
    monkeypatch.setattr(heartbeat, "STALE_AFTER", 12.0)
    web_settings.METRICS_TOKEN = TOKEN
    wait_until(lambda: _readyz(client)[0] == 200, timeout=60, message="/readyz ok with worker and beat up")

    worker.stop()
    status, body = wait_until(lambda: (r := _readyz(client))[0] == 503 and r, timeout=40,
                              message="/readyz failing with the worker stopped")

    assert body["status"] == "failing"
    assert body["checks"]["worker"]["ok"] is False
    assert "no worker heartbeat for" in body["checks"]["worker"]["error"]
    assert body["checks"]["scheduler"]["ok"] is True  # beat goes on; only the worker is named
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]

    celery_process(*WORKER_ARGS)
    wait_until(lambda: _readyz(client)[0] == 200, timeout=60, message="/readyz ok again after the restart")


def test_periodic_tasks_are_quiet_at_info(require_services, celery_process, worker):
    """Neither the worker nor beat logs a line per sweep or heartbeat at INFO (they run every few seconds)."""
    # Both roles have beaten at least twice: the sweeper and the heartbeat have run several times.
    wait_until(lambda: Heartbeat.objects.filter(role=Heartbeat.Role.WORKER).exists(), timeout=60, message="a beat")
    first = Heartbeat.objects.get(role=Heartbeat.Role.WORKER).seen_at
    wait_until(lambda: Heartbeat.objects.get(role=Heartbeat.Role.WORKER).seen_at > first, timeout=30,
               message="a second beat")

    logs = "".join(p.read_text() for p in worker.log_path.parent.glob("celery-*.log"))
    assert "celery@" in logs and "beat: Starting..." in logs  # the logs were captured at INFO
    log_lines = [line for line in logs.splitlines() if " INFO " in line]  # not the banner's task list
    for noise in ("sweep_due_deliveries", "sweep-due-deliveries", "operations.tasks.heartbeat", "Sending due task"):
        assert not [line for line in log_lines if noise in line]
