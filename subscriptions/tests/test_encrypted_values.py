"""The registry of encrypted values is complete: no model keeps a Fernet token in a field it does not list.

Two checks, because a new encrypted field can be missed two ways: by its name (a field
called like a secret, checked on every model of the project's apps) and by what it holds
(a webhook with every feature that stores a secret is created and delivered, then every
text and JSON column of every project model is searched for Fernet tokens).
"""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import models

from conftest import make_subscription, send_now
from delivery.models import Delivery
from subscriptions.activity import record_activity
from subscriptions.encrypted_values import ENCRYPTED_FIELDS
from subscriptions.services import subscription_regenerate_secret, subscription_set_headers

pytestmark = pytest.mark.django_db

REGISTERED = {(e.model, e.field) for e in ENCRYPTED_FIELDS}
# Fields named like a secret that hold none, each with the reason. A new entry needs a reason too.
NOT_ENCRYPTED = {
    ("delivery.EndpointWake", "token"): "a random tag of who created the wake row, not a secret",
}
SECRET_LIKE = re.compile(r"secret|encrypt|cipher|token|credential|password|passphrase|private|api_?key", re.I)
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField, models.BinaryField)
# A Fernet token: base64url of version byte 0x80 and a 64-bit timestamp, then at least IV, one block and the HMAC.
FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_\-]{90,}={0,2}")


def project_models():
    """Return the models of this repository's apps (not Django's nor a library's), whatever app comes later."""
    root = Path(settings.BASE_DIR).resolve()
    return [model for config in apps.get_app_configs()
            if Path(config.path).resolve().is_relative_to(root) and ".venv" not in Path(config.path).parts
            for model in config.get_models()]


def text_fields(model):
    return [f for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS)]


def test_the_registry_names_real_fields_once_each():
    assert len(REGISTERED) == len(ENCRYPTED_FIELDS)
    for model_label, field in REGISTERED:
        assert isinstance(apps.get_model(model_label)._meta.get_field(field), TEXT_FIELDS)


def test_every_field_named_like_a_secret_is_registered_or_says_why_not():
    models_seen = project_models()
    assert {m._meta.label for m in models_seen} >= {"subscriptions.Subscription", "delivery.Attempt",
                                                    "alerts.EndpointAlert", "organisations.Membership"}
    unlisted = [f"{m._meta.label}.{f.name}" for m in models_seen for f in text_fields(m)
                if SECRET_LIKE.search(f.name) and (m._meta.label, f.name) not in REGISTERED | set(NOT_ENCRYPTED)]
    assert unlisted == [], ("fields that may hold a secret but are not in subscriptions.encrypted_values "
                            "(key rotation would leave them under an old key)")


def test_every_fernet_token_stored_is_in_a_registered_field(settings, org, receiver):
    # A webhook with every feature that stores a secret: a planned rotation, secret headers, a delivery made.
    subscription, _ = make_subscription(org, url=receiver.url)
    subscription_regenerate_secret(subscription=subscription, overlap=timedelta(hours=1))
    subscription_set_headers(subscription=subscription, headers=[
        {"name": "X-Api-Key", "value": "k-1", "secret": True}, {"name": "X-Tenant", "value": "t", "secret": False}])
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "L"})
    assert send_now(Delivery.objects.get(event=event).id).status_code == 200

    holding = set()
    for model in project_models():
        for field in text_fields(model):
            for value in model._base_manager.values_list(field.attname, flat=True):
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                if text and FERNET_TOKEN.search(text):
                    holding.add((model._meta.label, field.name))

    assert holding - REGISTERED == set(), "Fernet tokens stored outside subscriptions.encrypted_values"
    assert holding == REGISTERED  # and the webhook above really exercised every registered field
