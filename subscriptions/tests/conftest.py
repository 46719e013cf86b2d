"""Fixtures of the Webhooks pages' tests: acme's webhook, its admin signed in."""

import pytest

from conftest import make_subscription


@pytest.fixture
def subscription(org, alice):
    """alice's webhook to https://hooks.example.com/in for lot.created and harvest.recorded."""
    subscription, _ = make_subscription(org, activity_types=["lot.created", "harvest.recorded"], created_by=alice)
    return subscription


@pytest.fixture
def admin_client(client, alice):
    client.force_login(alice)
    return client
