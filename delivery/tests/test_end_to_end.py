"""An activity recorded in Django reaches a real HTTPS receiver through a real worker."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from conftest import ROOT, make_subscription, wait_until
from delivery.models import Attempt, Delivery, Event
from subscriptions.activity import record_activity

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_activity_is_delivered_signed_to_https_receiver(require_services, org, receiver, worker):
    subscription, secret = make_subscription(org, url=receiver.url, activity_types=["lot.created"])
    data = {"lot_id": "LOT-1", "weight_grams": 5000.0, "strain": "Blue Dream"}

    event = record_activity(organisation=org, activity_type="lot.created", data=data)

    (request,) = receiver.wait_for(1)
    # The standardwebhooks library accepts it: right secret, fresh timestamp, exact body.
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload == {
        "id": event.webhook_id,
        "type": "lot.created",
        "timestamp": payload["timestamp"],
        "organisation": "acme",
        "data": data,
    }
    assert payload["timestamp"].endswith("Z")
    assert request.headers["webhook-id"] == event.webhook_id
    assert request.headers["content-type"] == "application/json"
    delivery = wait_until(
        lambda: Delivery.objects.filter(event=event, state=Delivery.State.SUCCEEDED).first(), message="success"
    )
    attempt = Attempt.objects.get(delivery=delivery)
    assert attempt.status_code == 200
    assert attempt.response_body == '{"ok":true}'
    assert attempt.request_headers["webhook-id"] == event.webhook_id
    assert secret not in json.dumps(attempt.request_headers)


def test_the_stores_are_the_ones_asked_for(require_services):
    """TEST_STORES=embedded runs on SQLite + the embedded broker; services (CI: always) on PostgreSQL + Redis."""
    from webhooks_project import testing

    if testing.STORES == "embedded":
        assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
        assert settings.CELERY_BROKER_URL == "embedded://"
    elif os.environ.get("REQUIRE_SERVICES") == "1":
        assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
        assert settings.CELERY_BROKER_URL.startswith("redis://")


def _manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


def test_embedded_defaults_deliver_without_postgres_or_redis(tmp_path, receiver):
    """The same path on `make run`'s defaults: SQLite and the filesystem broker, separate processes."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME")}
    env.update(
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        CELERY_FILESYSTEM_BROKER_DIR=str(tmp_path / "broker"),
        REQUESTS_CA_BUNDLE=str(receiver.ca_path),
        WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true",
    )
    _manage(env, "migrate", "-v0")
    _manage(env, "create_organisation", "demo", "--name", "Demo", "--admin", "admin", "--password", "pw-123456789")
    secret = _manage(env, "create_webhook", "demo", receiver.url, "--activity-types", "harvest.recorded").split()[-1]
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "webhooks_project", "worker", "--pool", "threads",
         "--without-mingle", "--without-gossip", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        ids = _manage(env, "emit_activity", "demo", "harvest.recorded", "--data", '{"harvest_id": "H-1"}',
                      "--count", "3").split()
        requests = receiver.wait_for(3)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert sorted(r.headers["webhook-id"] for r in requests) == sorted(ids)
    for r in requests:
        assert Webhook(secret).verify(r.body, r.headers)["data"] == {"harvest_id": "H-1"}


def test_500_then_200_through_a_real_worker_keeps_the_webhook_id(require_services, org, receiver, celery_process):
    from conftest import WORKER_ARGS

    receiver.script.append(500)
    subscription, secret = make_subscription(org, url=receiver.url)
    celery_process(*WORKER_ARGS, env={"WEBHOOKS_RETRY_SCHEDULE": "1,1"})
    celery_process("beat", "--schedule", str(receiver.ca_dir / "beat-schedule"))

    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "R"})

    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event.webhook_id
    assert Webhook(secret).verify(second.body, second.headers)["id"] == event.webhook_id
    delivery = wait_until(
        lambda: Delivery.objects.filter(event=event, state=Delivery.State.SUCCEEDED).first(), message="success"
    )
    assert list(delivery.attempts.values_list("status_code", flat=True)) == [500, 200]


def test_a_delivery_whose_message_was_lost_is_sent_by_the_sweeper(require_services, org, receiver, monkeypatch,
                                                                   worker):
    make_subscription(org, url=receiver.url)
    # The broker "forgets" the message: nothing is enqueued on commit.
    monkeypatch.setattr("delivery.wakeups.endpoints_awaken", lambda ids: 0)

    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOST"})

    (request,) = receiver.wait_for(1, timeout=60)
    assert request.headers["webhook-id"] == event.webhook_id


def test_a_rolled_back_activity_never_reaches_the_receiver(require_services, org, receiver, worker):
    from django.db import transaction

    make_subscription(org, url=receiver.url)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "ROLLED-BACK"})
            raise RuntimeError("domain failure")
    kept = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "KEPT"})

    receiver.wait_for(1)
    wait_until(lambda: Delivery.objects.filter(event=kept, state=Delivery.State.SUCCEEDED).exists(),
               message="the committed event to be delivered")
    # Nothing of the rolled-back activity is left to send: neither the sender nor the sweeper can find it.
    assert not Event.objects.filter(body__contains="ROLLED-BACK").exists()
    assert not Delivery.objects.exclude(event=kept).exists()
    assert [r.json["data"]["lot_id"] for r in receiver.received] == ["KEPT"]
