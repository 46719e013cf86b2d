"""`manage.py rotate_encryption_keys`: every secret re-encrypted under the newest key."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command

from conftest import make_subscription
from subscriptions.models import Subscription
from subscriptions.services import subscription_delete
from subscriptions.signing_secrets import decrypt_secret

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def rotate(*args) -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def three_secrets(settings, org):
    """Three subscriptions (one deleted) whose secrets were written under OLD; return {id: secret}."""
    settings.WEBHOOKS_ENCRYPTION_KEYS = [OLD]
    made = [make_subscription(org, url=f"https://hooks.example.com/{n}") for n in range(3)]
    subscription_delete(subscription=made[2][0])
    return {s.id: secret for s, secret in made}


def test_rotation_moves_every_secret_to_the_newest_key_so_the_old_key_can_go(settings, three_secrets):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW, OLD]

    output = rotate()

    assert output.strip() == "Re-encrypted 3 secrets under the newest key; 0 already were."
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW]  # the old key retired
    for subscription in Subscription.objects.all():
        assert decrypt_secret(subscription.secret_encrypted) == three_secrets[subscription.id]
        with pytest.raises(InvalidToken):
            Fernet(OLD).decrypt(subscription.secret_encrypted.encode())


def test_without_rotation_retiring_the_old_key_loses_the_secrets(settings, three_secrets):
    """Control for the test above: the old key really was needed before the command ran."""
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(InvalidToken):
        decrypt_secret(Subscription.objects.first().secret_encrypted)


def test_a_second_run_has_nothing_to_do(settings, three_secrets):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW, OLD]
    rotate()
    before = dict(Subscription.objects.values_list("id", "secret_encrypted"))

    assert rotate().strip() == "Re-encrypted 0 secrets under the newest key; 3 already were."
    assert dict(Subscription.objects.values_list("id", "secret_encrypted")) == before


def test_a_secret_under_an_unknown_key_is_reported_by_id_and_the_rest_rotated(settings, three_secrets):
    # Bad input: one secret written under a key that is no longer in the list.
    stray_key = Fernet.generate_key()
    stray = Subscription.objects.order_by("id").first()
    Subscription.objects.filter(id=stray.id).update(secret_encrypted=Fernet(stray_key).encrypt(b"whsec_x").decode())
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW, OLD]

    with pytest.raises(CommandError) as caught:
        rotate()

    message = str(caught.value)
    assert message == (
        f"1 secrets could not be decrypted with any key in WEBHOOKS_ENCRYPTION_KEYS (subscriptions {stray.id}); "
        "add the key they were written with and run again."
    )
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW]
    others = Subscription.objects.exclude(id=stray.id)
    assert [decrypt_secret(s.secret_encrypted) for s in others] == [three_secrets[s.id] for s in others]
    assert not any(secret in message for secret in three_secrets.values())


def test_generate_key_prints_a_usable_key_and_touches_nothing(settings, three_secrets):
    before = dict(Subscription.objects.values_list("id", "secret_encrypted"))
    key = rotate("--generate-key").strip()
    Fernet(key)  # raises if it is not a Fernet key
    assert dict(Subscription.objects.values_list("id", "secret_encrypted")) == before
