"""Planned secret rotation: the seed's rule by default, an overlap of up to 24 hours on request.

Real deliveries to the real HTTPS receiver, verified as receivers verify them,
with the `standardwebhooks` and `svix` libraries.
"""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError as SvixVerificationError

from conftest import make_subscription, send_now
from delivery.models import Delivery
from subscriptions.activity import record_activity
from subscriptions.models import Subscription, TrailEntry
from subscriptions.services import (
    subscription_old_secrets_forget,
    subscription_regenerate_secret,
    subscription_stop_old_secret,
)
from subscriptions.tasks import forget_expired_old_secrets

pytestmark = pytest.mark.django_db


def _deliver_one(org, receiver):
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "ROT"})
    send_now(Delivery.objects.get(event=event).id)
    return receiver.received[-1]


def _verifies(secret, request) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    SvixWebhook(secret).verify(request.body, request.headers)  # the other library agrees
    return True


def _svix_refuses(secret, request) -> bool:
    try:
        SvixWebhook(secret).verify(request.body, request.headers)
    except SvixVerificationError:
        return True
    return False


def test_by_default_the_old_secret_stops_at_once(org, receiver):
    subscription, old = make_subscription(org, url=receiver.url)
    new = subscription_regenerate_secret(subscription=subscription)
    request = _deliver_one(org, receiver)
    assert _verifies(new, request)
    assert not _verifies(old, request) and _svix_refuses(old, request)
    assert len(request.headers["webhook-signature"].split()) == 1


def test_during_the_overlap_both_secrets_verify_and_after_it_only_the_new_one(org, receiver):
    subscription, old = make_subscription(org, url=receiver.url)
    new = subscription_regenerate_secret(subscription=subscription, overlap=timedelta(hours=2))
    subscription.refresh_from_db()
    assert subscription.previous_secret_until > timezone.now() + timedelta(minutes=119)
    assert "old secret also signs until" in TrailEntry.objects.filter(subscription=subscription).first().detail

    during = _deliver_one(org, receiver)
    assert len(during.headers["webhook-signature"].split()) == 2
    assert _verifies(new, during) and _verifies(old, during)

    with time_machine.travel(timezone.now() + timedelta(hours=2, minutes=1)):
        after = _deliver_one(org, receiver)
        assert _verifies(new, after)  # (verified at the traveled time: the timestamp is that of the send)
        assert not _verifies(old, after) and _svix_refuses(old, after)


def test_stop_the_old_secret_now_ends_the_overlap(org, receiver):
    subscription, old = make_subscription(org, url=receiver.url)
    new = subscription_regenerate_secret(subscription=subscription, overlap=timedelta(hours=24))
    assert subscription_stop_old_secret(subscription=subscription) is True
    assert subscription_stop_old_secret(subscription=subscription) is False  # nothing left to stop

    request = _deliver_one(org, receiver)
    assert _verifies(new, request) and not _verifies(old, request)
    stored = Subscription.objects.get(id=subscription.id)
    assert stored.previous_secret_encrypted == "" and stored.previous_secret_until is None


@pytest.mark.parametrize("overlap", [timedelta(hours=25), timedelta(0), timedelta(seconds=-5)])
def test_an_overlap_outside_24_hours_is_refused_and_nothing_changes(org, overlap):
    # bad input: more than 24 hours, none, or negative
    subscription, _ = make_subscription(org)
    before = subscription.secret_encrypted
    with pytest.raises(ValidationError, match="up to 24 hours"):
        subscription_regenerate_secret(subscription=subscription, overlap=overlap)
    assert Subscription.objects.get(id=subscription.id).secret_encrypted == before


# --- an expired old secret is deleted by the retention job (issue 21) --------------------------------------

def test_an_old_secret_whose_time_is_up_is_deleted_by_the_periodic_job(org):
    # Bad input for storage: an overlap that ended, with nobody pressing Stop; its secret used to stay stored.
    ended, _ = make_subscription(org, url="https://hooks.example.com/ended")
    running, _ = make_subscription(org, url="https://hooks.example.com/running")
    subscription_regenerate_secret(subscription=ended, overlap=timedelta(hours=1))
    subscription_regenerate_secret(subscription=running, overlap=timedelta(hours=24))

    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        assert forget_expired_old_secrets() == 1
        assert forget_expired_old_secrets() == 0  # nothing left to delete

    stored = Subscription.objects.get(id=ended.id)
    assert stored.previous_secret_encrypted == "" and stored.previous_secret_until is None
    assert TrailEntry.objects.filter(subscription=ended, actor=None,
                                     detail="the old secret's time was up: it was deleted").exists()
    kept = Subscription.objects.get(id=running.id)
    assert kept.previous_secret_encrypted and kept.old_secret_signs_until is not None


def test_a_rotation_started_meanwhile_keeps_its_old_secret(org):
    subscription, _ = make_subscription(org)
    subscription_regenerate_secret(subscription=subscription, overlap=timedelta(hours=1))
    later = timezone.now() + timedelta(hours=2)
    with time_machine.travel(later):
        subscription_regenerate_secret(subscription=Subscription.objects.get(id=subscription.id),
                                       overlap=timedelta(hours=6))  # a new overlap, before the job ran
        assert subscription_old_secrets_forget(now=later) == 0
    assert Subscription.objects.get(id=subscription.id).previous_secret_encrypted


def test_the_scheduler_runs_the_job_every_30_seconds():
    from webhooks_project.celery import app

    (entry,) = [e for e in settings.CELERY_BEAT_SCHEDULE.values()
                if e["task"] == "subscriptions.tasks.forget_expired_old_secrets"]
    assert entry["schedule"] <= 30
    app.loader.import_default_modules()
    assert app.tasks[entry["task"]].run is forget_expired_old_secrets.run  # the worker knows the task
