"""`manage.py rotate_encryption_keys`: every encrypted value re-encrypted under the newest key, then the drill.

What is encrypted comes from subscriptions.encrypted_values: the signing secret, the
previous secret of a planned rotation and secret custom header values (finding 1 of
issue 21: only the first used to be rotated, so the others were lost with the old key).
"""

from datetime import timedelta
from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command
from standardwebhooks.webhooks import Webhook

from conftest import WORKER_ARGS, make_subscription, wait_until
from delivery.models import Attempt, Delivery
from subscriptions.activity import record_activity
from subscriptions.custom_headers import headers_for_sending
from subscriptions.models import Subscription
from subscriptions.services import subscription_delete, subscription_regenerate_secret, subscription_set_headers
from subscriptions.signing_secrets import decrypt_secret

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
HEADERS = [{"name": "X-Api-Key", "value": "gw-key-OLD-1", "secret": True},
           {"name": "Authorization", "value": "Bearer tok-OLD-2", "secret": True},
           {"name": "X-Tenant", "value": "acme-eu", "secret": False}]


def rotate(*args) -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out)
    return out.getvalue()


def report(signing, previous, headers) -> str:
    """The command's report: (re-encrypted, already current) for each kind of encrypted value."""
    return "".join(f"{label}: {done} re-encrypted, {current} already under the newest key\n" for label, (done, current)
                   in [("signing secrets", signing), ("previous signing secrets of planned rotations", previous),
                       ("secret custom header values", headers)])


@pytest.fixture
def three_secrets(settings, org):
    """Three subscriptions (one deleted) whose secrets were written under OLD; return {id: secret}."""
    settings.WEBHOOKS_ENCRYPTION_KEYS = [OLD]
    made = [make_subscription(org, url=f"https://hooks.example.com/{n}") for n in range(3)]
    subscription_delete(subscription=made[2][0])
    return {s.id: secret for s, secret in made}


@pytest.fixture
def in_overlap(settings, org):
    """A subscription under OLD in a planned rotation (the old secret signs 6 more hours) with two secret headers.

    Return (subscription, new secret, old secret).
    """
    settings.WEBHOOKS_ENCRYPTION_KEYS = [OLD]
    subscription, old_secret = make_subscription(org, url="https://hooks.example.com/overlap")
    new_secret = subscription_regenerate_secret(subscription=subscription, overlap=timedelta(hours=6))
    subscription_set_headers(subscription=subscription, headers=HEADERS)
    return Subscription.objects.get(id=subscription.id), new_secret, old_secret


@pytest.mark.django_db
def test_rotation_moves_every_secret_to_the_newest_key_so_the_old_key_can_go(settings, three_secrets):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW, OLD]

    output = rotate()

    assert output == report(signing=(3, 0), previous=(0, 0), headers=(0, 0))
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW]  # the old key retired
    for subscription in Subscription.objects.all():
        assert decrypt_secret(subscription.secret_encrypted) == three_secrets[subscription.id]
        with pytest.raises(InvalidToken):
            Fernet(OLD).decrypt(subscription.secret_encrypted.encode())


@pytest.mark.django_db
def test_the_previous_secret_and_secret_header_values_are_rotated_too(settings, in_overlap):
    # Finding 1: before the registry, these two stayed under OLD and were lost with it.
    subscription, new_secret, old_secret = in_overlap
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW, OLD]

    output = rotate()

    assert output == report(signing=(1, 0), previous=(1, 0), headers=(2, 0))
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW]
    fresh = Subscription.objects.get(id=subscription.id)
    assert decrypt_secret(fresh.secret_encrypted) == new_secret
    assert decrypt_secret(fresh.previous_secret_encrypted) == old_secret
    assert headers_for_sending(stored=fresh.custom_headers) == {h["name"]: h["value"] for h in HEADERS}
    assert fresh.custom_headers[2] == subscription.custom_headers[2]  # a plain value is left as it was
    assert fresh.updated_at == subscription.updated_at  # not a change anyone made


@pytest.mark.django_db
def test_without_rotation_retiring_the_old_key_loses_the_secrets(settings, three_secrets):
    """Control for the tests above: the old key really was needed before the command ran."""
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(InvalidToken):
        decrypt_secret(Subscription.objects.first().secret_encrypted)


@pytest.mark.django_db
def test_a_second_run_has_nothing_to_do(settings, three_secrets, in_overlap):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW, OLD]
    rotate()
    before = list(Subscription.objects.order_by("id").values_list(
        "secret_encrypted", "previous_secret_encrypted", "custom_headers"))

    assert rotate() == report(signing=(0, 4), previous=(0, 1), headers=(0, 2))
    assert list(Subscription.objects.order_by("id").values_list(
        "secret_encrypted", "previous_secret_encrypted", "custom_headers")) == before


@pytest.mark.django_db
def test_a_value_under_an_unknown_key_is_reported_by_id_and_the_rest_rotated(settings, three_secrets, in_overlap):
    # Bad input: one secret and one header value written under a key that is no longer in the list.
    stray_key = Fernet(Fernet.generate_key())
    stray = Subscription.objects.order_by("id").exclude(id=in_overlap[0].id).first()
    Subscription.objects.filter(id=stray.id).update(secret_encrypted=stray_key.encrypt(b"whsec_x").decode())
    headers = in_overlap[0].custom_headers
    headers[0] = {**headers[0], "value": stray_key.encrypt(b"lost").decode()}
    Subscription.objects.filter(id=in_overlap[0].id).update(custom_headers=headers)
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW, OLD]

    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("rotate_encryption_keys", stdout=out)

    message = str(caught.value)
    assert message == (
        f"2 values could not be decrypted with any key in WEBHOOKS_ENCRYPTION_KEYS (signing secrets of "
        f"subscriptions {stray.id}; secret custom header values of subscriptions {in_overlap[0].id}); "
        "add the key they were written with and run again."
    )
    assert out.getvalue() == report(signing=(3, 0), previous=(1, 0), headers=(1, 0))
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW]
    others = Subscription.objects.exclude(id__in=[stray.id, in_overlap[0].id])
    assert [decrypt_secret(s.secret_encrypted) for s in others] == [three_secrets[s.id] for s in others]
    kept = Subscription.objects.get(id=in_overlap[0].id).custom_headers[1]["value"]
    assert decrypt_secret(kept) == "Bearer tok-OLD-2"
    assert not any(secret in message for secret in three_secrets.values())


@pytest.mark.django_db
def test_generate_key_prints_a_usable_key_and_touches_nothing(settings, three_secrets):
    before = dict(Subscription.objects.values_list("id", "secret_encrypted"))
    key = rotate("--generate-key").strip()
    Fernet(key)  # raises if it is not a Fernet key
    assert dict(Subscription.objects.values_list("id", "secret_encrypted")) == before


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_drill_rotate_remove_the_old_key_and_a_worker_with_only_the_new_key_delivers_everything(
        require_services, settings, org, receiver, celery_process):
    """The key-rotation drill: a planned overlap and two secret headers, rotate, remove the old key, deliver."""
    settings.WEBHOOKS_ENCRYPTION_KEYS = [OLD]
    subscription, old_secret = make_subscription(org, url=receiver.url)
    new_secret = subscription_regenerate_secret(subscription=subscription, overlap=timedelta(hours=6))
    subscription_set_headers(subscription=subscription, headers=HEADERS)
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW, OLD]  # step 1: the new key first, the old one still listed
    assert rotate() == report(signing=(1, 0), previous=(1, 0), headers=(2, 0))  # step 2

    # Step 3: the old key removed. The worker is started with the new key alone.
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW]
    celery_process(*WORKER_ARGS, env={"WEBHOOKS_ENCRYPTION_KEYS": NEW})
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "DRILL-1"})

    (request,) = receiver.wait_for(1, timeout=60)
    assert Webhook(new_secret).verify(request.body, request.headers)["id"] == event.webhook_id
    assert Webhook(old_secret).verify(request.body, request.headers)["id"] == event.webhook_id
    assert len(request.headers["webhook-signature"].split()) == 2
    assert request.headers["x-api-key"] == "gw-key-OLD-1"
    assert request.headers["authorization"] == "Bearer tok-OLD-2"
    assert request.headers["x-tenant"] == "acme-eu"
    delivery = wait_until(lambda: Delivery.objects.filter(event=event, state=Delivery.State.SUCCEEDED).first(),
                          message="the delivery recorded as succeeded")
    assert Attempt.objects.get(delivery=delivery).error_message == ""
