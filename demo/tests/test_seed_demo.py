"""`manage.py seed_demo` seeds a little of the demo domain, once."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from delivery.models import Event
from demo.models import Batch, Lot, Order

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seeds_once_then_does_nothing(org):
    assert run("acme") == "Seeded the demo domain for acme: a batch, a harvest, a lot, a sample, an order.\n"
    counts = (Batch.objects.count(), Lot.objects.count(), Order.objects.count(), Event.objects.count())
    assert counts == (1, 1, 1, 5)
    assert run("acme") == "The demo domain for acme is already seeded.\n"
    assert (Batch.objects.count(), Lot.objects.count(), Order.objects.count(), Event.objects.count()) == counts


def test_unknown_organisation_is_refused(db):
    """Bad input: an organisation slug that does not exist."""
    with pytest.raises(CommandError, match="No organisation with slug 'nope'"):
        run("nope")
