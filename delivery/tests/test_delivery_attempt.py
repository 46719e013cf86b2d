"""One attempt of a delivery, in-process, against a real HTTPS receiver."""

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import make_subscription, send_now
from delivery.models import Attempt, Delivery
from delivery.tests.receiver import redirect
from subscriptions.activity import record_activity
from subscriptions.services import subscription_delete, subscription_pause, subscription_regenerate_secret

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(org, receiver):
    """Return (subscription, secret, delivery) for one recorded lot.created."""
    subscription, secret = make_subscription(org, url=receiver.url)
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-7"})
    return subscription, secret, Delivery.objects.get(event=event)


def _make_due(delivery):
    Delivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now(), locked_until=None)


def test_2xx_succeeds_and_records_the_attempt(delivered, receiver):
    _, secret, delivery = delivered
    attempt = send_now(delivery.id)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SUCCEEDED and delivery.attempt_count == 1
    assert attempt.status_code == 200 and attempt.duration_ms >= 0
    assert attempt.response_headers["Content-Type"] == "application/json"
    (request,) = receiver.received
    assert Webhook(secret).verify(request.body, request.headers)["data"] == {"lot_id": "LOT-7"}


def test_500_then_200_keeps_the_webhook_id_and_ends_succeeded_after_2_attempts(delivered, receiver):
    _, _, delivery = delivered
    receiver.script.append(500)
    send_now(delivery.id)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.PENDING
    assert delivery.last_status_code == 500 and delivery.last_error == "HTTP 500"
    # The first retry is due about 5 s later (±10 % jitter), not at once.
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 3.5 < wait < 5.6
    assert send_now(delivery.id) is None  # not due yet: nothing sent

    _make_due(delivery)
    send_now(delivery.id)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SUCCEEDED
    assert list(Attempt.objects.filter(delivery=delivery).values_list("number", "status_code")) == [(1, 500), (2, 200)]
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.event.webhook_id


def test_a_302_fails_the_attempt_and_is_retried(delivered, receiver):
    _, _, delivery = delivered
    receiver.script.append(redirect("https://127.0.0.1:1/elsewhere"))  # bad input: a redirect
    attempt = send_now(delivery.id)
    delivery.refresh_from_db()
    assert attempt.status_code == 302
    assert delivery.state == Delivery.State.PENDING and delivery.next_attempt_at is not None
    assert len(receiver.received) == 1


def test_the_delivery_fails_for_good_after_the_last_scheduled_retry(delivered, receiver, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [1, 1]
    receiver.default = 503
    _, _, delivery = delivered
    for _ in range(3):
        _make_due(delivery)
        send_now(delivery.id)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.FAILED
    assert delivery.attempt_count == 3 and delivery.completed_at is not None
    _make_due(delivery)
    assert send_now(delivery.id) is None
    assert len(receiver.received) == 3


def test_a_hanging_receiver_is_recorded_as_a_timeout(delivered, receiver, settings):
    from delivery.tests.receiver import hang

    settings.WEBHOOKS_TIMEOUT = 1
    receiver.script.append(hang(5))  # bad input: no answer at all
    _, _, delivery = delivered
    attempt = send_now(delivery.id)
    assert attempt.status_code is None
    assert attempt.error_kind == "timeout"
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.PENDING
    assert delivery.last_error == "Status line and headers not received within 1 s."


def test_retry_of_an_older_event_is_signed_with_the_regenerated_secret(delivered, receiver):
    subscription, old_secret, delivery = delivered
    receiver.script.append(500)
    send_now(delivery.id)
    new_secret = subscription_regenerate_secret(subscription=subscription)
    _make_due(delivery)
    send_now(delivery.id)
    retry = receiver.received[-1]
    assert Webhook(new_secret).verify(retry.body, retry.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(retry.body, retry.headers)


def test_a_deleted_subscription_sends_nothing_and_its_delivery_is_cancelled(delivered, receiver):
    subscription, _, delivery = delivered
    subscription_delete(subscription=subscription)
    assert send_now(delivery.id) is None
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.CANCELLED
    assert receiver.received == []


def test_a_paused_subscription_holds_instead_of_sending(delivered, receiver):
    subscription, _, delivery = delivered
    subscription_pause(subscription=subscription)
    assert send_now(delivery.id) is None
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.HELD
    assert receiver.received == []


def test_the_url_is_read_at_send_time(delivered, receiver, tmp_path):
    from delivery.tests.receiver import Receiver

    subscription, _, delivery = delivered
    other_dir = tmp_path / "new"
    other_dir.mkdir()
    with Receiver(other_dir, ca=receiver.ca) as new_receiver:  # same CA, so it is trusted too
        subscription.url = new_receiver.url
        subscription.save(update_fields=["url"])
        attempt = send_now(delivery.id)
        assert attempt.url == new_receiver.url and attempt.status_code == 200
        assert len(new_receiver.received) == 1
    assert receiver.received == []
