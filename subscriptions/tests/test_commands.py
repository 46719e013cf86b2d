"""create_webhook and emit_activity, as run from a shell."""

import pytest
from django.core.management import CommandError, call_command

from delivery.models import Delivery, Event
from subscriptions.models import Subscription
from subscriptions.signing_secrets import decrypt_secret

pytestmark = pytest.mark.django_db


def test_create_webhook_prints_the_secret_once_on_the_last_line(org, capsys):
    call_command("create_webhook", "acme", "https://erp.example.com/h", "--activity-types", "lot.created,order.created")
    out = capsys.readouterr().out.strip().splitlines()
    subscription = Subscription.objects.get()
    assert out[-1].startswith("whsec_")
    assert decrypt_secret(subscription.secret_encrypted) == out[-1]
    assert sum(line.count("whsec_") for line in out) == 1


@pytest.mark.parametrize(
    "url, types, message",
    [
        ("http://erp.example.com/h", "lot.created", "The URL must use HTTPS."),  # plain HTTP
        ("https://erp.example.com/h", "lot.exploded", "Unknown activity type"),  # unknown type
        ("https://erp.example.com/h", ",", "Select at least one"),  # no type
    ],
)
def test_create_webhook_refuses_bad_input_like_the_page(org, url, types, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_webhook", "acme", url, "--activity-types", types)
    assert not Subscription.objects.exists()


def test_create_webhook_refuses_an_unknown_organisation(db):
    with pytest.raises(CommandError, match="No organisation"):
        call_command("create_webhook", "nope", "https://erp.example.com/h", "--activity-types", "lot.created")


def test_emit_activity_prints_each_event_id(org, capsys):
    from conftest import make_subscription

    make_subscription(org)
    call_command("emit_activity", "acme", "lot.created", "--data", '{"lot_id": "L-1"}', "--count", "3")
    ids = capsys.readouterr().out.split()
    assert len(ids) == 3
    assert sorted(ids) == sorted(e.webhook_id for e in Event.objects.all())
    assert Delivery.objects.count() == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["lot.exploded", "--data", "{}"], "Unknown activity type"),  # unknown type
        (["lot.created", "--data", "{not json"], "not valid JSON"),  # broken JSON
        (["lot.created", "--data", "[1, 2]"], "must be a JSON object"),  # not an object
        (["lot.created", "--count", "0"], "at least 1"),  # nonsense count
    ],
)
def test_emit_activity_refuses_bad_input_and_records_nothing(org, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("emit_activity", "acme", *args)
    assert not Event.objects.exists()
