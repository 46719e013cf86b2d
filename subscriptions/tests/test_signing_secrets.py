"""Signing secrets: random, encrypted at rest under a rotatable key list, and never
in the database in clear, a log, the activity trail, the delivery log or an error."""

import base64
import logging
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.db import connection

from conftest import ROOT, make_subscription, send_now
from delivery.models import Attempt, Delivery
from subscriptions.activity import record_activity
from subscriptions.models import Subscription, TrailEntry
from subscriptions.services import subscription_regenerate_secret
from subscriptions.signing_secrets import (
    decrypt_secret,
    encrypt_secret,
    encrypted_under_newest_key,
    generate_secret,
    reencrypt_secret,
    secret_key_bytes,
)

pytestmark = pytest.mark.django_db


def test_a_secret_is_whsec_and_32_random_bytes():
    secrets = {generate_secret() for _ in range(100)}
    assert len(secrets) == 100
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(secret_key_bytes(secret)) == 32


def test_at_rest_the_secret_is_a_fernet_token_that_does_not_contain_it():
    secret = generate_secret()
    token = encrypt_secret(secret)
    assert secret not in token and secret.removeprefix("whsec_") not in token
    assert decrypt_secret(token) == secret


def test_no_column_of_the_subscription_row_holds_the_secret(org):
    subscription, secret = make_subscription(org)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Subscription._meta.db_table} WHERE id = %s", [subscription.id.hex
                       if connection.vendor == "sqlite" else subscription.id])
        row = cursor.fetchone()
    assert row is not None
    assert not any(secret.removeprefix("whsec_") in str(value) for value in row)


def test_the_newest_key_encrypts_and_every_listed_key_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.WEBHOOKS_ENCRYPTION_KEYS = [old]
    secret = generate_secret()
    old_token = encrypt_secret(secret)

    settings.WEBHOOKS_ENCRYPTION_KEYS = [new, old]
    assert decrypt_secret(old_token) == secret  # still readable during the rotation
    assert not encrypted_under_newest_key(old_token)
    new_token = reencrypt_secret(old_token)
    assert encrypted_under_newest_key(new_token)
    assert Fernet(new).decrypt(new_token.encode()).decode() == secret
    with pytest.raises(InvalidToken):
        Fernet(old).decrypt(new_token.encode())


def test_a_retired_key_decrypts_nothing(settings):
    # Bad input: a token written under a key that was removed from the list.
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    token = encrypt_secret(generate_secret())
    settings.WEBHOOKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(InvalidToken):
        decrypt_secret(token)


def _settings_in_subprocess(**env) -> subprocess.CompletedProcess:
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(len(settings.WEBHOOKS_ENCRYPTION_KEYS))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "webhooks_project.settings", **env})


def test_a_malformed_key_stops_the_start_without_echoing_it():
    # Bad input: a key that is not 32 url-safe base64 bytes.
    bad = "not-a-fernet-key-but-a-secret-value"
    result = _settings_in_subprocess(WEBHOOKS_ENCRYPTION_KEYS=f"{Fernet.generate_key().decode()},{bad}")
    assert result.returncode != 0
    assert "WEBHOOKS_ENCRYPTION_KEYS entry 2 is not a Fernet key" in result.stderr
    assert bad not in result.stderr


def test_the_secret_key_entry_names_the_derived_key_for_a_migration():
    new = Fernet.generate_key().decode()
    result = _settings_in_subprocess(WEBHOOKS_ENCRYPTION_KEYS=f"{new},SECRET_KEY")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_secrets_stay_out_of_logs_trail_and_delivery_log(org, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    subscription, first = make_subscription(org, url=receiver.url)
    second = subscription_regenerate_secret(subscription=subscription)
    record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-9"})
    receiver.script.append(500)
    send_now(Delivery.objects.get(subscription=subscription).id)

    stored = [
        caplog.text,
        *TrailEntry.objects.filter(subscription=subscription).values_list("detail", flat=True),
        *(str(row) for row in Attempt.objects.values()),
        *(str(row) for row in Delivery.objects.values()),
    ]
    assert len(receiver.received) == 1  # the attempt did happen, so there was something to leak
    for secret in (first, second):
        key = secret.removeprefix("whsec_")
        assert not any(key in text for text in stored)
        assert not any(base64.b64decode(key).hex() in text for text in stored)
