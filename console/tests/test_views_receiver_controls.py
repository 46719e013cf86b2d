"""What a receiver asks for, on Create and Edit: a timeout of its own; its bad input refused at the field."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from subscriptions.models import Subscription, TrailEntry

pytestmark = pytest.mark.usefixtures("web_settings")

CREATE = reverse("console:subscription_create")


def _create(client, **fields):
    return client.post(CREATE, {"url": "https://erp.example.com/hooks", "activity_types": ["lot.created"], **fields})


def _edit(client, subscription, **fields):
    types = list(subscription.activity_types.values_list("activity_type", flat=True))
    return client.post(reverse("console:subscription_edit", args=[subscription.id]),
                       {"url": subscription.url, "activity_types": types, **fields})


def test_a_timeout_given_on_create_is_kept_shown_and_in_the_trail(admin_client, org):
    response = _create(admin_client, timeout_seconds="25")

    subscription = Subscription.objects.get(organisation=org)
    assert response.status_code == 302
    assert subscription.timeout_seconds == 25
    page = admin_client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode()
    assert "<dt>Timeout</dt><dd>25 s per request</dd>" in page
    assert "timeout 25 s" in TrailEntry.objects.get(subscription=subscription, action="created").detail


def test_an_empty_timeout_is_the_default_and_the_page_says_so(admin_client, org, settings):
    settings.WEBHOOKS_TIMEOUT = 10.0
    _create(admin_client, timeout_seconds="")

    subscription = Subscription.objects.get(organisation=org)
    assert subscription.timeout_seconds is None and subscription.timeout == 10.0
    page = admin_client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode()
    assert "<dt>Timeout</dt><dd>10 s per request (the default)</dd>" in page


@pytest.mark.parametrize(("typed", "message"), [
    ("0", "The timeout must be at least 1 second."),
    ("-5", "The timeout must be at least 1 second."),
    ("31", "The timeout can be at most 30 seconds."),
    ("ten", "Enter a whole number of seconds from 1 to 30."),
    ("2.5", "Enter a whole number of seconds from 1 to 30."),
])
def test_a_bad_timeout_is_an_error_at_its_field_and_nothing_is_saved(admin_client, org, typed, message):
    """Bad input: zero, negative, over 30, text, a fraction."""
    response = _create(admin_client, timeout_seconds=typed)

    assert response.status_code == 200
    page = response.content.decode()
    assert f'<p class="field__error" id="id_timeout_seconds-error">{escape(message)}</p>' in page
    assert f'<a href="#id_timeout_seconds">{escape(message)}</a>' in page  # in the summary, linked to the field
    assert f'value="{escape(typed)}"' in page  # what was typed stays, to be corrected
    assert not Subscription.objects.filter(organisation=org).exists()


def test_editing_the_timeout_saves_it_with_a_trail_entry_and_a_bad_one_saves_nothing(admin_client, org, subscription):
    assert _edit(admin_client, subscription, timeout_seconds="31").status_code == 200
    subscription.refresh_from_db()
    assert subscription.timeout_seconds is None
    assert not TrailEntry.objects.filter(subscription=subscription, action="edited").exists()

    assert _edit(admin_client, subscription, timeout_seconds="3").status_code == 302
    subscription.refresh_from_db()
    assert subscription.timeout_seconds == 3
    assert TrailEntry.objects.get(subscription=subscription, action="edited").detail == "timeout the default → 3 s"

    form = admin_client.get(reverse("console:subscription_edit", args=[subscription.id])).content.decode()
    assert 'name="timeout_seconds" id="id_timeout_seconds" value="3"' in form


def test_a_rate_limit_given_on_create_is_kept_shown_on_the_card_and_page_and_in_the_trail(admin_client, org):
    _create(admin_client, max_per_second="20")

    subscription = Subscription.objects.get(organisation=org)
    assert subscription.max_per_second == 20
    page = admin_client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode()
    assert "<dt>Rate limit</dt><dd>20 deliveries per second at most</dd>" in page
    card = admin_client.get(reverse("console:subscription_list")).content.decode()
    assert "<dt>Rate limit</dt><dd>20/s</dd>" in card
    assert "rate limit 20/s" in TrailEntry.objects.get(subscription=subscription, action="created").detail


def test_no_rate_limit_says_none_and_the_card_says_nothing(admin_client, org):
    _create(admin_client, max_per_second="")

    subscription = Subscription.objects.get(organisation=org)
    assert subscription.max_per_second is None
    page = admin_client.get(reverse("console:subscription_detail", args=[subscription.id])).content.decode()
    assert "<dt>Rate limit</dt><dd>None</dd>" in page
    assert "Rate limit" not in admin_client.get(reverse("console:subscription_list")).content.decode()


@pytest.mark.parametrize(("typed", "message"), [
    ("0", "The limit must be at least 1 delivery per second."),
    ("-20", "The limit must be at least 1 delivery per second."),
    ("1001", "The limit can be at most 1,000 deliveries per second."),
    ("fast", "Enter a whole number from 1 to 1,000, or leave it empty."),
])
def test_a_bad_rate_limit_is_an_error_at_its_field_and_nothing_is_saved(admin_client, org, typed, message):
    """Bad input: zero, negative, over 1,000, text."""
    response = _create(admin_client, max_per_second=typed)

    page = response.content.decode()
    assert response.status_code == 200
    assert f'<p class="field__error" id="id_max_per_second-error">{escape(message)}</p>' in page
    assert f'<a href="#id_max_per_second">{escape(message)}</a>' in page
    assert not Subscription.objects.filter(organisation=org).exists()


def test_editing_the_rate_limit_is_in_the_trail(admin_client, subscription):
    assert _edit(admin_client, subscription, max_per_second="5").status_code == 302
    assert _edit(admin_client, subscription, max_per_second="").status_code == 302

    subscription.refresh_from_db()
    assert subscription.max_per_second is None
    details = list(TrailEntry.objects.filter(subscription=subscription, action="edited").values_list("detail",
                                                                                                      flat=True))
    assert details == ["rate limit 5/s → none", "rate limit none → 5/s"]  # newest first
