"""/healthz, /readyz and `manage.py check_health`: what failed is named in the JSON."""

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone

from conftest import ROOT
from operations import heartbeat, readiness
from operations.models import Heartbeat
from operations.tasks import heartbeat as heartbeat_task
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
    # Nothing listens on port 1: the broker check must fail fast, not hang.
    connect = app.connection_for_write
    monkeypatch.setattr(app, "connection_for_write", lambda **kwargs: connect("redis://127.0.0.1:1/0", **kwargs))


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


TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def test_readyz_fails_naming_a_worker_that_has_not_been_seen(client, token):
    _beat(Heartbeat.Role.SCHEDULER, 1)
    _beat(Heartbeat.Role.WORKER, heartbeat.STALE_AFTER + 5)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "failing", "checks": {"database": "ok", "broker": "ok",
                                                               "worker": "failing", "scheduler": "ok"}}
    body = client.get("/readyz", **token).json()
    assert body["checks"]["worker"]["ok"] is False
    assert "no worker heartbeat for" in body["checks"]["worker"]["error"]
    assert body["checks"]["scheduler"]["ok"] is True


def test_readyz_fails_when_no_scheduler_was_ever_seen(client, token):
    _beat(Heartbeat.Role.WORKER, 1)
    assert client.get("/readyz").json()["checks"]["scheduler"] == "failing"
    body = client.get("/readyz", **token).json()
    assert body["checks"]["scheduler"] == {"ok": False, "seconds_since_seen": None,
                                           "error": "no scheduler heartbeat yet"}


def test_readyz_tells_anyone_only_that_the_broker_fails_and_the_token_holder_and_the_log_why(
        client, alive, broker_down, token, caplog):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "failing", "checks": {"database": "ok", "broker": "failing",
                                                               "worker": "ok", "scheduler": "ok"}}
    (logged,) = [r for r in caplog.records if r.name == "operations.views"]
    assert logged.getMessage().startswith("Readiness check broker failing: ") and "127.0.0.1:1" in logged.getMessage()
    checks = client.get("/readyz", **token).json()["checks"]
    assert checks["broker"]["ok"] is False and "127.0.0.1:1" in checks["broker"]["error"]
    assert checks["database"]["ok"] is True
    # Bad input: a wrong token is anyone.
    assert "error" not in json.dumps(client.get("/readyz", HTTP_AUTHORIZATION="Bearer wrong").json())
    assert len([r for r in caplog.records if r.name == "operations.views"]) == 1  # logged once, not per probe


def test_readyz_masks_passwords_even_for_the_token_holder(client, alive, monkeypatch, token):
    def refused():
        raise OperationalError("connection to server at \"db\" failed: postgres://app:hun/ter#2@db/x refused")

    monkeypatch.setattr(readiness, "_database", refused)
    assert client.get("/readyz").json()["checks"]["database"] == "failing"
    body = client.get("/readyz", **token).json()
    assert body["checks"]["database"]["ok"] is False
    assert "hun/ter#2" not in json.dumps(body) and "***@db/x" in body["checks"]["database"]["error"]
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
    heartbeat_task()

    assert Heartbeat.objects.get().role == Heartbeat.Role.WORKER
    assert heartbeat.heartbeat_ages()[Heartbeat.Role.WORKER] < 5


# --- /readyz with credentials in the URLs (finding 7 of issue 21) -----------------------------------------

DB_PASSWORD, BROKER_PASSWORD = "Db7x#Qq9z?Sl4h/Co1n:Zz8y", "Br0k#Ky2u?Wp3r/Xv5t:Nm6q"
PROBE = """
import json, os, django
django.setup()
from django.test import Client
anyone = Client().get("/readyz", secure=True)
operator = Client().get("/readyz", secure=True, HTTP_AUTHORIZATION="Bearer " + os.environ["METRICS_TOKEN"])
print(json.dumps({"status": anyone.status_code, "anyone": anyone.content.decode(),
                  "operator": operator.content.decode()}))
"""


def _probe(database_url: str, broker_url: str) -> subprocess.CompletedProcess:
    """Ask /readyz, anonymously and with the token, in a process started with these URLs (nothing answers them)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME")}
    env.update(DATABASE_URL=database_url, CELERY_BROKER_URL=broker_url, METRICS_TOKEN=TOKEN, DEBUG="false",
               ALLOWED_HOSTS="testserver", DJANGO_SETTINGS_MODULE="webhooks_project.settings")
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def _pieces(password: str) -> list[str]:
    return [password, quote(password, safe=""), *re.split(r"[#?/:]", password)]


def test_anyone_learns_only_which_check_fails_never_a_host_user_or_password():
    # Bad input: passwords holding # ? / and :, percent-encoded as the URLs require; the role and hosts are internal.
    done = _probe(f"postgres://webhooks_prod:{quote(DB_PASSWORD, safe='')}@127.0.0.1:5432/webhooks_prod_db",
                  f"redis://:{quote(BROKER_PASSWORD, safe='')}@127.0.0.1:6399/0")

    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.splitlines()[-1])
    assert answers["status"] == 503
    assert json.loads(answers["anyone"]) == {"status": "failing", "checks": {
        "database": "failing", "broker": "failing", "worker": "failing", "scheduler": "failing"}}
    for secret in ["webhooks_prod", "127.0.0.1", "5432", "6399", *_pieces(DB_PASSWORD), *_pieces(BROKER_PASSWORD)]:
        assert secret not in answers["anyone"]
    operator = json.loads(answers["operator"])
    assert "6399" in operator["checks"]["broker"]["error"]  # the details are there for the token holder...
    for secret in [*_pieces(DB_PASSWORD), *_pieces(BROKER_PASSWORD)]:
        assert secret not in answers["operator"]  # ... without the passwords
    assert "Readiness check database failing" in done.stderr and DB_PASSWORD not in done.stderr  # and in the log


@pytest.mark.parametrize("variable", ["DATABASE_URL", "CELERY_BROKER_URL"])
def test_a_password_that_is_not_percent_encoded_stops_the_start_without_showing_it(variable):
    # Bad input: the password written as is, so that a URL parser cuts it at the # (it used to reach /readyz).
    urls = {"DATABASE_URL": "postgres://webhooks_prod:pw@127.0.0.1:5432/x", "CELERY_BROKER_URL": "redis://127.0.0.1:6399/0"}
    urls[variable] = ("postgres://webhooks_prod:" if variable == "DATABASE_URL" else "redis://:") \
        + BROKER_PASSWORD + "@127.0.0.1:6399/0"

    done = _probe(urls["DATABASE_URL"], urls["CELERY_BROKER_URL"])

    assert done.returncode != 0
    assert (f"ImproperlyConfigured: {variable} cannot be read: percent-encode the characters : / ? # [ ] @ % in its "
            "user name and password") in done.stderr
    for secret in _pieces(BROKER_PASSWORD):
        assert secret not in done.stderr
