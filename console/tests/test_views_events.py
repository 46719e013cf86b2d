"""Administration > Events: the organisation's events across all its webhooks, found by id, type and dates."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_subscription
from delivery.models import Delivery, Event
from subscriptions.activity import record_activity
from subscriptions.models import Subscription

pytestmark = pytest.mark.usefixtures("web_settings")

EVENTS = reverse("console:event_list")


def shown_ids(page: str) -> list[str]:
    return re.findall(r'<li class="panel event" id="(evt_[0-9a-f]{32})">', page)


@pytest.fixture
def three_webhooks(org):
    """Three webhooks of lot.created: one succeeds, one failed for good, one deleted after the event."""
    made = [make_subscription(org, url=f"https://{host}.example.com/in")[0] for host in ("erp", "wms", "old")]
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-1"})
    Delivery.objects.filter(event=event, subscription=made[0]).update(
        state=Delivery.State.SUCCEEDED, attempt_count=1, last_status_code=200)
    Delivery.objects.filter(event=event, subscription=made[1]).update(
        state=Delivery.State.FAILED, attempt_count=8, last_status_code=500, last_error="HTTP 500")
    Subscription.objects.filter(id=made[2].id).update(deleted_at=timezone.now())
    return made, event


def test_an_event_id_shows_its_delivery_to_every_webhook_and_their_states(client, alice, three_webhooks):
    (erp, wms, old), event = three_webhooks
    other = record_activity(organisation=erp.organisation, activity_type="lot.created", data={"lot_id": "LOT-2"})
    client.force_login(alice)
    page = client.get(EVENTS, {"q": event.webhook_id}).content.decode()
    assert shown_ids(page) == [event.webhook_id]
    erp_delivery = Delivery.objects.get(event=event, subscription=erp)
    assert f'href="{reverse("console:delivery_detail", args=[erp.id, erp_delivery.id])}">{erp.url}</a>' in page
    assert '<span class="badge badge--ok">Succeeded</span>' in page
    assert '<span class="badge badge--bad">Failed</span>' in page and "HTTP 500" in page
    assert f'<span class="mono">{old.url}</span> <span class="muted">(deleted)</span>' in page
    everything = client.get(EVENTS).content.decode()
    assert shown_ids(everything) == [other.webhook_id, event.webhook_id]  # newest first


def test_search_by_type_and_date_range(client, org, alice):
    make_subscription(org, activity_types=["lot.created", "order.created"])
    lot = record_activity(organisation=org, activity_type="lot.created", data={})
    order = record_activity(organisation=org, activity_type="order.created", data={})
    Event.objects.filter(id=lot.id).update(created_at=timezone.now() - timedelta(days=2))
    client.force_login(alice)
    assert shown_ids(client.get(EVENTS, {"type": "order.created"}).content.decode()) == [order.webhook_id]
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert shown_ids(client.get(EVENTS, {"since": since}).content.decode()) == [order.webhook_id]
    assert shown_ids(client.get(EVENTS, {"until": since}).content.decode()) == [lot.webhook_id]


def test_a_bad_event_id_or_range_says_so_at_its_field(client, org, alice):
    """Bad input: a truncated id, a range that ends before it starts, a forged page link."""
    make_subscription(org)
    record_activity(organisation=org, activity_type="lot.created", data={})
    client.force_login(alice)
    page = client.get(EVENTS, {"q": "evt_123"}).content.decode()
    assert "Enter a whole event id" in page and shown_ids(page) == []
    page = client.get(EVENTS, {"since": "2026-01-02T00:00", "until": "2026-01-01T00:00"}).content.decode()
    assert "Choose a time after the start of the range." in page and shown_ids(page) == []
    page = client.get(EVENTS, {"before": "not-a-cursor"}).content.decode()
    assert "Showing the newest events." in page and len(shown_ids(page)) == 1


def test_another_organisations_event_is_not_found(client, org, other_org, mallory, three_webhooks):
    """Bad input: acme's event id searched by globex's admin."""
    _, event = three_webhooks
    client.force_login(mallory)
    page = client.get(EVENTS, {"q": event.webhook_id}).content.decode()
    assert shown_ids(page) == [] and "No events match this search." in page and "erp.example.com" not in page


def test_the_webhooks_search_sends_an_event_id_to_the_events_page(client, alice, three_webhooks):
    _, event = three_webhooks
    client.force_login(alice)
    response = client.get(reverse("console:subscription_list"), {"q": f"  {event.webhook_id} "})
    assert response.status_code == 302 and response["Location"].startswith(EVENTS + "?q=evt_")
    assert shown_ids(client.get(response["Location"]).content.decode()) == [event.webhook_id]
    # Text that only starts like one is still a search of URLs and descriptions.
    assert client.get(reverse("console:subscription_list"), {"q": "evt_"}).status_code == 200


def test_each_delivery_page_links_to_the_event_across_webhooks(client, alice, three_webhooks):
    (erp, _, _), event = three_webhooks
    client.force_login(alice)
    link = f'href="{EVENTS}?q={event.webhook_id}"'
    delivery = Delivery.objects.get(event=event, subscription=erp)
    assert link in client.get(reverse("console:delivery_detail", args=[erp.id, delivery.id])).content.decode()


def test_pages_of_events_cost_the_same_queries_and_page_on(client, org, alice, django_assert_max_num_queries):
    from delivery.selectors import EVENTS_PAGE_SIZE

    for i in range(4):
        make_subscription(org, url=f"https://n{i}.example.com/in")
    for _ in range(EVENTS_PAGE_SIZE + 3):
        record_activity(organisation=org, activity_type="lot.created", data={})
    client.force_login(alice)
    client.get(EVENTS)
    # Session, user, membership (with its organisation), the events, their deliveries with their webhooks.
    with django_assert_max_num_queries(6):
        first = client.get(EVENTS).content.decode()
    assert len(shown_ids(first)) == EVENTS_PAGE_SIZE and first.count('<td data-label="Webhook"') == 4 * 25
    older = re.search(r'href="([^"]+)" rel="next">Older</a>', first).group(1).replace("&amp;", "&")
    second = client.get(older).content.decode()
    assert len(shown_ids(second)) == 3 and not set(shown_ids(second)) & set(shown_ids(first))
