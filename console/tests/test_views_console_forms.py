"""Forms and confirmations of the console: the error summary, a URL over the limit, a second webhook to one URL,
Test Webhook with an edited payload, and the counts that Retry failed and Delete show before they act."""

import json
from datetime import timedelta

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from conftest import make_subscription
from delivery.models import Delivery, Event
from subscriptions.activity import record_activity
from subscriptions.activity_types import get_activity_type
from subscriptions.models import Subscription, TrailEntry
from subscriptions.validators import MAX_URL_LENGTH

pytestmark = pytest.mark.usefixtures("web_settings")

CREATE = reverse("console:subscription_create")


def action(name, subscription):
    return reverse(f"console:subscription_{name}", args=[subscription.id])


def test_errors_are_summarised_at_the_top_with_links_to_their_fields(admin_client):
    page = admin_client.post(CREATE, {"url": "http://insecure.example.com/"}).content.decode()
    summary = page[page.index('id="error-summary"'):page.index("</ul>", page.index('id="error-summary"'))]
    opening = page[page.rindex("<div", 0, page.index('id="error-summary"')):]
    assert "autofocus" in opening[:opening.index(">")] and 'tabindex="-1"' in opening[:opening.index(">")]
    assert "There are problems with this webhook" in summary
    assert '<a href="#id_url">The URL must use HTTPS.</a>' in summary
    assert '<a href="#activity-types">Select at least one activity type.</a>' in summary
    assert 'id="error-summary"' not in admin_client.get(CREATE).content.decode()


def test_a_url_over_the_limit_is_refused_with_a_message_not_cut(admin_client):
    long_url = "https://hooks.example.com/" + "a" * (MAX_URL_LENGTH + 100)
    form = admin_client.get(CREATE).content.decode()
    assert "maxlength" not in form[form.index('name="url"') - 200:form.index('name="url"') + 200]
    page = admin_client.post(CREATE, {"url": long_url, "activity_types": ["lot.created"]}).content.decode()
    assert f"The URL must be at most {MAX_URL_LENGTH:,} characters." in page
    assert f'value="{long_url}"' in page  # kept whole, so the user sees what was pasted
    assert not Subscription.objects.exists()


def test_a_second_webhook_to_the_same_url_asks_to_confirm(admin_client, org, subscription):
    data = {"url": " https://hooks.example.com/in ", "activity_types": ["order.created"]}
    page = admin_client.post(CREATE, data).content.decode()
    assert "already has a webhook to this URL" in page and "Yes, add another webhook to this URL" in page
    assert f'href="{action("detail", subscription)}"' in page
    assert Subscription.objects.count() == 1
    response = admin_client.post(CREATE, {**data, "confirm_duplicate": "on"})
    assert response.status_code == 302 and Subscription.objects.count() == 2


def test_another_organisations_url_or_a_deleted_webhook_is_no_duplicate(admin_client, other_org, subscription):
    make_subscription(other_org, url="https://shared.example.com/in")
    assert admin_client.post(CREATE, {"url": "https://shared.example.com/in",
                                      "activity_types": ["lot.created"]}).status_code == 302
    Subscription.objects.filter(id=subscription.id).update(deleted_at=timezone.now())
    assert admin_client.post(CREATE, {"url": subscription.url, "activity_types": ["lot.created"]}).status_code == 302


def test_editing_keeps_its_own_url_without_a_warning_but_moving_onto_another_asks(admin_client, org, subscription):
    make_subscription(org, url="https://taken.example.com/in")
    same = admin_client.post(action("edit", subscription), {"url": subscription.url,
                                                            "activity_types": ["lot.created"]})
    assert same.status_code == 302
    moved = admin_client.post(action("edit", subscription), {"url": "https://taken.example.com/in",
                                                             "activity_types": ["lot.created"]})
    assert moved.status_code == 200 and "already has a webhook to this URL" in moved.content.decode()
    subscription.refresh_from_db()
    assert subscription.url == "https://hooks.example.com/in"


def test_test_page_shows_the_chosen_types_sample_to_edit(admin_client, subscription):
    page = admin_client.get(action("test", subscription), {"activity_type": "harvest.recorded"}).content.decode()
    assert '<option value="harvest.recorded" selected>' in page
    assert "&quot;harvest_id&quot;" in page  # the sample, in the textarea
    assert 'name="activity_type" value="harvest.recorded"' in page
    assert "This webhook is paused" not in page
    assert "field__error" not in page and "error-summary" not in page  # nothing was sent yet: no error


def test_an_edited_payload_is_sent_as_typed(admin_client, subscription):
    data = {**get_activity_type("lot.created").sample, "lot_id": "LOT-EDITED", "note": "an extra property"}
    response = admin_client.post(action("test", subscription), {"activity_type": "lot.created",
                                                                 "data": json.dumps(data)})
    assert response.status_code == 302
    body = json.loads(Event.objects.get().body)
    assert body["data"] == data and body["test"] is True


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "This is not valid JSON"),
    ("[1, 2]", "The payload data must be a JSON object"),
    ('{"lot_id": 5}', "missing required properties: product, strain"),
    ('{"lot_id": 5}', "lot_id: 5 is not of type &#x27;string&#x27;"),
    ('{"x": "' + "y" * 70_000 + '"}', "at most 65,536 characters"),
    # Finding 4 of issue 21: nested 941 deep, this was a 500 (RecursionError in json.loads).
    ('{"a":' * 941 + "1" + "}" * 941, "The JSON is nested too deeply at character 161: more than 32 levels"),
    ("[" * 941, "The JSON is nested too deeply at character 33"),
])
def test_a_payload_that_breaks_the_schema_is_not_sent(admin_client, subscription, text, message):
    """Bad input: not JSON, not an object, against the schema, too long, nested far too deep."""
    response = admin_client.post(action("test", subscription), {"activity_type": "lot.created", "data": text})
    page = response.content.decode()
    assert response.status_code == 400 and message in page, page[page.find("error-summary"):][:800]
    assert "The test was not sent" in page and not Event.objects.exists()


def test_on_a_paused_webhook_the_test_says_it_is_held_and_is(admin_client, subscription):
    Subscription.objects.filter(id=subscription.id).update(state=Subscription.State.PAUSED)
    page = admin_client.get(action("test", subscription)).content.decode()
    assert "This webhook is paused." in page and "held until Resume" in page
    detail = admin_client.get(action("detail", subscription)).content.decode()
    assert "This webhook is paused: a test is held, and sent when you resume it." in detail
    response = admin_client.post(action("test", subscription), {"activity_type": "lot.created"}, follow=True)
    page = response.content.decode()
    assert "Test held: Lot created" in page and "the test is sent when you resume it" in page
    assert "Its result appears" not in page
    assert Delivery.objects.get().state == Delivery.State.HELD


def test_retry_failed_since_says_how_many_before_it_sends(admin_client, org, subscription):
    for _ in range(3):
        record_activity(organisation=org, activity_type="lot.created", data={})
    Delivery.objects.update(state=Delivery.State.FAILED, attempt_count=8, next_attempt_at=None)
    old = Delivery.objects.first()
    Delivery.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    detail = admin_client.get(action("detail", subscription)).content.decode()
    assert "Retry failed deliveries since (UTC)" in detail and "A date and time in UTC." in detail
    confirm = admin_client.get(action("recover", subscription), {"since": since}).content.decode()
    assert "2 failed deliveries</strong> created since" in confirm and "Retry 2 failed deliveries" in confirm
    assert f'name="since" value="{since}"' in confirm
    assert Delivery.objects.filter(state=Delivery.State.FAILED).count() == 3  # the GET sent nothing
    later = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    none = admin_client.get(action("recover", subscription), {"since": later})
    assert "there is nothing to retry" in none.content.decode()


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_retry_failed_since_a_date_outside_the_calendar_in_utc_is_an_error_not_a_500(admin_client, subscription,
                                                                                    since):
    # Bad input found by the console fuzz: ISO dates with a zone are read before the input formats, and these two
    # are in the years 10000 and 0 in UTC (an OverflowError at the query, on SQLite).
    for method in (admin_client.get, admin_client.post):
        response = method(action("recover", subscription), {"since": since}, follow=True)
        assert response.status_code == 200
        assert "Enter the date and time from which to retry failed deliveries (UTC)." in response.content.decode()


def test_delete_says_how_many_pending_deliveries_it_cancels(admin_client, org, subscription):
    record_activity(organisation=org, activity_type="lot.created", data={})
    record_activity(organisation=org, activity_type="lot.created", data={})
    confirm = admin_client.get(action("delete", subscription)).content.decode()
    assert "<strong>2 pending deliveries</strong> will be cancelled." in confirm
    Delivery.objects.update(state=Delivery.State.SUCCEEDED)
    confirm = admin_client.get(action("delete", subscription)).content.decode()
    assert "No delivery is pending: nothing will be cancelled." in confirm


def test_one_held_delivery_is_singular_in_the_trail(admin_client, org, subscription):
    admin_client.post(action("pause", subscription))
    record_activity(organisation=org, activity_type="lot.created", data={})
    page = admin_client.post(action("resume", subscription), follow=True).content.decode()
    assert "1 held delivery is being sent" in page
    assert TrailEntry.objects.get(action=TrailEntry.Action.RESUMED).detail == "1 held delivery released"


def test_a_flash_message_is_a_status_region_not_a_list_with_a_role(admin_client, subscription):
    page = admin_client.post(action("pause", subscription), follow=True).content.decode()
    assert '<div class="messages" role="status">' in page and 'role="status">\n      <p class="message' in page
    assert '<ul class="messages"' not in page


def test_times_are_utc_on_the_server_and_marked_for_the_viewers_zone():
    at = timezone.datetime(2026, 11, 30, 8, 5, 9, tzinfo=timezone.get_fixed_timezone(60))
    html = Template('{% load times %}{% utc_time at %}|{% utc_time at "seconds" %}|{% utc_time none %}').render(
        Context({"at": at, "none": None}))
    assert html == ('<time datetime="2026-11-30T07:05:09Z" data-local="minutes" title="30 Nov 2026, 07:05 UTC">'
                    '30 Nov 2026, 07:05 UTC</time>|'
                    '<time datetime="2026-11-30T07:05:09Z" data-local="seconds" title="30 Nov 2026, 07:05:09 UTC">'
                    '30 Nov 2026, 07:05:09 UTC</time>|')


def test_a_held_card_never_shows_an_old_status_code(admin_client, org, subscription):
    record_activity(organisation=org, activity_type="lot.created", data={})
    Delivery.objects.update(state=Delivery.State.HELD, last_status_code=401, attempt_count=1)
    page = admin_client.get(reverse("console:subscription_list")).content.decode()
    assert ">Held<" in page and "HTTP 401" not in page
    Delivery.objects.update(state=Delivery.State.FAILED)
    assert "HTTP 401" in admin_client.get(reverse("console:subscription_list")).content.decode()
