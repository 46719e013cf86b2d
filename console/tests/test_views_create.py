"""The Webhooks page and Create Webhook: cards, the empty state, the form and its errors at the field."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from conftest import make_subscription
from subscriptions.activity import record_activity
from subscriptions.activity_types import CATEGORIES, by_category
from subscriptions.models import Subscription, TrailEntry

pytestmark = pytest.mark.usefixtures("web_settings")

CREATE = reverse("console:subscription_create")
LIST = reverse("console:subscription_list")


def test_empty_state_explains_webhooks_and_offers_create(client, alice):
    client.force_login(alice)
    page = client.get(LIST).content.decode()
    assert "No webhooks yet" in page
    assert "Webhooks let GrowerIQ notify your other systems" in page
    assert f'href="{CREATE}"' in page and "Create Webhook" in page


def test_navigation_reads_administration_then_webhooks(client, alice):
    client.force_login(alice)
    page = client.get(LIST).content.decode()
    nav = page[page.index('aria-label="Main"'):page.index("</nav>")]
    assert nav.index("Administration") < nav.index(f'href="{LIST}">Webhooks</a>')


def test_form_groups_the_seeds_labels_by_its_six_categories(client, alice):
    client.force_login(alice)
    page = client.get(CREATE).content.decode()
    for label in ("Endpoint URL", "Activity Types", ">Create<"):
        assert label in page
    positions = [page.index(f"<legend>{escape(c)}</legend>") for c in CATEGORIES]
    assert positions == sorted(positions)
    for category, types in by_category():
        start = page.index(f"<legend>{escape(category)}</legend>")
        for t in types:
            # Each checkbox sits inside its label, under its category's legend.
            assert f'value="{t.code}" id="type-' in page[start:]
            assert page.index(f"> {t.label}</label>", start) > start
    assert page.count('name="activity_types"') == 25
    assert page.count("data-select-all") == 6


def test_create_makes_the_webhook_and_goes_to_its_secret(client, alice, org):
    client.force_login(alice)
    response = client.post(CREATE, {"url": "https://erp.example.com/hooks", "description": "ERP",
                                    "activity_types": ["lot.created", "harvest.recorded"]})
    subscription = Subscription.objects.get(organisation=org)
    assert response["Location"] == reverse("console:subscription_secret", args=[subscription.id])
    assert subscription.url == "https://erp.example.com/hooks"
    assert subscription.description == "ERP"
    assert subscription.created_by == alice
    assert sorted(subscription.activity_types.values_list("activity_type", flat=True)) == [
        "harvest.recorded", "lot.created"]
    assert TrailEntry.objects.get(subscription=subscription).action == TrailEntry.Action.CREATED


@pytest.mark.parametrize(("url", "message"), [
    ("http://erp.example.com/hooks", "The URL must use HTTPS."),
    ("https://", "Enter a valid URL with a host name."),
    ("not a url", "The URL must use HTTPS."),
    ("https://exa mple.com/x", "Enter a valid URL. It must not contain spaces or control characters."),
    ("", "Enter the endpoint URL."),
])
def test_bad_url_is_shown_at_the_field_and_the_form_keeps_what_was_typed(client, alice, url, message):
    """Bad input: each URL in the parameters (non-HTTPS, no host, not a URL, a space, empty)."""
    client.force_login(alice)
    response = client.post(CREATE, {"url": url, "description": "keep me",
                                    "activity_types": ["lot.created", "recall.initiated"]})
    assert response.status_code == 200
    page = response.content.decode()
    assert f'<p class="field__error" id="id_url-error">{message}</p>' in page
    assert f'value="{url}"' in page if url else 'name="url"' in page
    assert 'value="keep me"' in page
    assert 'value="lot.created" id="type-lotcreated" checked' in page
    assert 'value="recall.initiated" id="type-recallinitiated" checked' in page
    assert 'value="order.created" id="type-ordercreated">' in page
    assert not Subscription.objects.exists()


def test_no_activity_type_is_shown_at_the_field(client, alice):
    """Bad input: a good URL and no activity type."""
    client.force_login(alice)
    page = client.post(CREATE, {"url": "https://erp.example.com/hooks"}).content.decode()
    assert '<p class="field__error" id="activity-types-error">Select at least one activity type.</p>' in page
    assert 'value="https://erp.example.com/hooks"' in page
    assert not Subscription.objects.exists()


def test_unknown_activity_type_is_refused(client, alice):
    """Bad input: a forged activity type code."""
    client.force_login(alice)
    page = client.post(CREATE, {"url": "https://erp.example.com/hooks",
                                "activity_types": ["lot.created", "lot.exploded"]}).content.decode()
    assert "Unknown activity type: lot.exploded." in page
    assert not Subscription.objects.exists()


def test_cards_show_endpoint_state_types_and_why_paused(client, org, alice):
    active, _ = make_subscription(org, url="https://a.example.com/in", activity_types=["lot.created"],
                                  description="Inventory sync")
    paused, _ = make_subscription(org, url="https://b.example.com/in", activity_types=["order.created"])
    Subscription.objects.filter(id=paused.id).update(
        state=Subscription.State.PAUSED, paused_reason="Every attempt failed for 5 days")
    gone, _ = make_subscription(org, url="https://deleted.example.com/in")
    from django.utils import timezone
    Subscription.objects.filter(id=gone.id).update(deleted_at=timezone.now())
    client.force_login(alice)
    page = client.get(LIST).content.decode()
    assert "https://a.example.com/in" in page and "Inventory sync" in page
    assert "Paused automatically: Every attempt failed for 5 days" in page
    assert '<code class="chip">lot.created</code>' in page and '<code class="chip">order.created</code>' in page
    assert page.count('class="badge badge--ok">Healthy') == 1  # the header badge is the health
    assert page.count('class="badge badge--paused">Paused') == 1
    assert "deleted.example.com" not in page
    assert page.count("None yet") == 2  # no delivery yet on either card


def test_list_costs_the_same_queries_for_one_card_or_twenty(client, org, alice, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(alice)
    first, _ = make_subscription(org, url="https://0.example.com/in")
    Subscription.objects.filter(id=first.id).update(state=Subscription.State.PAUSED)
    record_activity(organisation=org, activity_type="lot.created", data={"n": 0})
    client.get(LIST)  # warm the session and content types
    with CaptureQueriesContext(connection) as one:
        client.get(LIST)
    for i in range(1, 20):
        s, _ = make_subscription(org, url=f"https://{i}.example.com/in",
                                 activity_types=["lot.created", "order.created"])
        record_activity(organisation=org, activity_type="lot.created", data={"n": i})
        if i % 2:
            Subscription.objects.filter(id=s.id).update(state=Subscription.State.PAUSED)
    with django_assert_max_num_queries(len(one)):
        page = client.get(LIST).content.decode()
    assert page.count('<li class="card') == 20


def test_user_without_organisation_sees_no_webhooks_and_cannot_create(client, org, db):
    """Bad input: a signed-in user who belongs to no organisation."""
    from conftest import make_user

    make_subscription(org)
    loner = make_user("loner")
    client.force_login(loner)
    page = client.get(LIST).content.decode()
    assert "No organisation" in page and "hooks.example.com" not in page
    assert client.get(CREATE).status_code == 404
    assert client.post(CREATE, {"url": "https://x.example.com/", "activity_types": ["lot.created"]}).status_code == 404
    assert Subscription.objects.count() == 1
