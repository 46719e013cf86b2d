"""The Delivery Log's search: a whole event id, dates, state and type combined, keyset pages, bulk redeliver."""

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_subscription
from console.tests.test_views_detail import add_deliveries, event_links
from delivery import bulk
from delivery.models import Delivery
from delivery.selectors import cursor_encode
from subscriptions.models import Subscription, TrailEntry

pytestmark = pytest.mark.usefixtures("web_settings")


@pytest.fixture
def subscription(org, alice):
    subscription, _ = make_subscription(org, activity_types=["lot.created", "order.created"], created_by=alice)
    return subscription


def detail(subscription):
    return reverse("console:subscription_detail", args=[subscription.id])


def bulk_url(subscription):
    return reverse("console:deliveries_bulk_redeliver", args=[subscription.id])


def confirmed_post(client, subscription, query=None):
    """Open the confirmation page and press its button: POST what the page's form holds. Return the answer."""
    page = client.get(bulk_url(subscription), query or {}).content.decode()
    form = page.split('<form method="post" class="actions">')[1].split("</form>")[0]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    return client.post(bulk_url(subscription), {k: v.replace("&#x27;", "'").replace("&amp;", "&")
                                                for k, v in fields.items()}, follow=True)


def one_event_each(subscription, count, **kwargs):
    """Return count deliveries with an event each (add_deliveries shares one event between its rows)."""
    return [add_deliveries(subscription, 1, **kwargs)[0] for _ in range(count)]


def test_the_log_shows_short_event_ids_with_the_whole_id_and_a_copy_button(admin_client, subscription):
    (row,) = one_event_each(subscription, 1)
    page = admin_client.get(detail(subscription)).content.decode()
    whole = f"evt_{row.event_id.hex}"
    # On screen evt_ + 8 + … + 4 hex digits; the whole id is the link's title and its words for a screen reader.
    short = f'<span aria-hidden="true">evt_{row.event_id.hex[:8]}…{row.event_id.hex[-4:]}</span>'
    assert f'title="{whole}">{short}<span class="visually-hidden">{whole}</span></a>' in page
    assert f'data-copy-text="{whole}"' in page and f'aria-label="Copy event id {whole}"' in page


@pytest.mark.parametrize("spelling", ["evt_{hex}", "{hex}", "  EVT_{HEX} ", "{uuid}"])
def test_search_by_a_whole_event_id_finds_its_delivery_at_any_depth(admin_client, subscription, spelling):
    rows = one_event_each(subscription, 3)
    add_deliveries(subscription, 120)  # the wanted one is on the third page of the unfiltered log
    wanted = rows[0]
    q = spelling.format(hex=wanted.event_id.hex, HEX=wanted.event_id.hex.upper(), uuid=wanted.event_id)
    page = admin_client.get(detail(subscription), {"q": q}).content.decode()
    assert event_links(page) == [str(wanted.id)]


def test_an_event_id_that_is_not_whole_is_an_error_at_the_field_and_shows_no_rows(admin_client, subscription):
    """Bad input: a cut id (the old 13 characters), a word, and 5,000 characters."""
    (row,) = one_event_each(subscription, 1)
    for q in (f"evt_{row.event_id.hex}"[:13], "lot", "x" * 5000):
        response = admin_client.get(detail(subscription), {"q": q})
        page = response.content.decode()
        assert response.status_code == 200
        assert "Enter a whole event id" in page or "Ensure this value has at most" in page, q
        assert event_links(page) == [] and "Correct the search above to see deliveries." in page


def test_another_webhooks_event_id_finds_nothing(admin_client, org, subscription):
    other, _ = make_subscription(org, url="https://other.example.com/in")
    (theirs,) = one_event_each(other, 1)
    one_event_each(subscription, 2)
    page = admin_client.get(detail(subscription), {"q": f"evt_{theirs.event_id.hex}"}).content.decode()
    assert event_links(page) == [] and "No deliveries match these filters." in page


def test_date_range_state_and_type_combine(admin_client, subscription):
    now = timezone.now().replace(microsecond=0)
    old = add_deliveries(subscription, 2, start=now - timedelta(days=10), state=Delivery.State.FAILED)
    inside = add_deliveries(subscription, 3, start=now - timedelta(days=3), state=Delivery.State.FAILED)
    add_deliveries(subscription, 2, start=now - timedelta(days=3), state=Delivery.State.SUCCEEDED)
    add_deliveries(subscription, 2, start=now - timedelta(days=3), state=Delivery.State.FAILED,
                   activity_type="order.created")
    add_deliveries(subscription, 2, start=now - timedelta(hours=1), state=Delivery.State.FAILED)
    params = {"state": "failed", "type": "lot.created",
              "since": (now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M"),
              "until": (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")}
    page = admin_client.get(detail(subscription), params).content.decode()
    assert set(event_links(page)) == {str(d.id) for d in inside}
    assert 'value="failed" selected' in page and 'value="lot.created" selected' in page
    assert f'value="{params["since"]}"' in page  # the form keeps what was searched
    until_only = admin_client.get(detail(subscription), {"until": params["since"]}).content.decode()
    assert set(event_links(until_only)) == {str(d.id) for d in old}


def test_a_range_that_ends_before_it_starts_is_an_error(admin_client, subscription):
    """Bad input: "to" before "from", and a date that is not one."""
    add_deliveries(subscription, 2)
    page = admin_client.get(detail(subscription), {"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"})
    assert "Choose a time after the start of the range." in page.content.decode()
    page = admin_client.get(detail(subscription), {"since": "last tuesday"}).content.decode()
    assert "Enter a date and time." in page and event_links(page) == []


def test_older_pages_keep_the_search(admin_client, subscription):
    rows = add_deliveries(subscription, 60, state=Delivery.State.FAILED)
    add_deliveries(subscription, 60)
    page = admin_client.get(detail(subscription), {"state": "failed"}).content.decode()
    older = re.search(r'href="([^"]+)" rel="next">Older</a>', page).group(1).replace("&amp;", "&")
    assert "state=failed" in older
    second = admin_client.get(older).content.decode()
    assert len(event_links(page)) + len(event_links(second)) == len(rows)
    assert set(event_links(page) + event_links(second)) == {str(d.id) for d in rows}


def test_bulk_redeliver_says_how_many_first_then_redelivers_the_filtered_set(admin_client, alice, subscription):
    failed = add_deliveries(subscription, 4, state=Delivery.State.FAILED)
    ok = add_deliveries(subscription, 3)
    pending = add_deliveries(subscription, 1, state=Delivery.State.PENDING)
    detail_page = admin_client.get(detail(subscription), {"state": "failed"}).content.decode()
    assert f'href="{bulk_url(subscription)}?state=failed"' in detail_page

    confirm = admin_client.get(bulk_url(subscription), {"state": "failed", "before": "Zm9v", "x": "1"}).content.decode()
    assert "4 finished deliveries</strong> will be sent again" in confirm
    assert 'name="before"' not in confirm and 'name="x"' not in confirm  # only the search is carried on
    assert "state Failed" in confirm and 'name="state" value="failed"' in confirm
    assert Delivery.objects.filter(state=Delivery.State.FAILED).count() == 4  # a GET sends nothing

    response = confirmed_post(admin_client, subscription, {"state": "failed"})
    assert "Redelivering 4 deliveries" in response.content.decode()
    assert response.redirect_chain[-1][0] == detail(subscription) + "?state=failed#delivery-log"
    assert set(Delivery.objects.filter(id__in=[d.id for d in failed]).values_list("state", flat=True)) == {"pending"}
    assert set(Delivery.objects.filter(id__in=[d.id for d in ok]).values_list("state", flat=True)) == {"succeeded"}
    assert Delivery.objects.get(id=pending[0].id).attempt_count == 1
    entry = TrailEntry.objects.get(subscription=subscription, action=TrailEntry.Action.REDELIVERED)
    assert entry.actor == alice and entry.detail == "4 deliveries of the Delivery Log (state Failed)"


def test_bulk_redeliver_of_everything_skips_unfinished_deliveries(admin_client, subscription):
    add_deliveries(subscription, 2)
    add_deliveries(subscription, 5, state=Delivery.State.PENDING)
    confirm = admin_client.get(bulk_url(subscription)).content.decode()
    assert "2 finished deliveries</strong>" in confirm and "all deliveries" in confirm
    nothing = admin_client.get(bulk_url(subscription), {"state": "pending"}).content.decode()
    assert "nothing to redeliver" in nothing and "Redeliver 0" not in nothing


def test_bulk_redeliver_refuses_on_a_paused_webhook_and_above_the_limit(admin_client, subscription, monkeypatch):
    add_deliveries(subscription, 3, state=Delivery.State.FAILED)
    monkeypatch.setattr(bulk, "BULK_LIMIT", 2)
    monkeypatch.setattr("console.bulk_views.BULK_LIMIT", 2)
    confirm = admin_client.get(bulk_url(subscription)).content.decode()
    assert "More than 2 finished deliveries match" in confirm and "<button" not in confirm.split("<main")[1]
    admin_client.post(bulk_url(subscription))
    assert Delivery.objects.filter(state=Delivery.State.FAILED).count() == 3  # nothing half-done

    monkeypatch.setattr(bulk, "BULK_LIMIT", 10)
    Subscription.objects.filter(id=subscription.id).update(state=Subscription.State.PAUSED)
    confirm = admin_client.get(bulk_url(subscription)).content.decode()
    assert "This webhook is paused: resume it to redeliver." in confirm
    response = admin_client.post(bulk_url(subscription), follow=True)
    assert "resume it to redeliver" in response.content.decode()
    assert Delivery.objects.filter(state=Delivery.State.FAILED).count() == 3


def test_bulk_redeliver_is_for_admins_of_the_organisation_only(client, bob, mallory, subscription):
    add_deliveries(subscription, 2, state=Delivery.State.FAILED)
    client.force_login(bob)
    assert client.get(bulk_url(subscription)).status_code == 403
    assert client.post(bulk_url(subscription)).status_code == 403
    page = client.get(detail(subscription)).content.decode()
    assert "Redeliver all finished" not in page
    client.force_login(mallory)
    assert client.post(bulk_url(subscription)).status_code == 404
    assert Delivery.objects.filter(state=Delivery.State.FAILED).count() == 2


# --- what is sent is what was confirmed (issue 21) -----------------------------------------------------------

def test_deliveries_created_after_the_confirmation_are_not_sent(admin_client, subscription):
    # Bad input: confirmed 5, then 3 more failures arrive before the button is pressed (it used to send 8).
    confirmed = add_deliveries(subscription, 5, state=Delivery.State.FAILED)
    page = admin_client.get(bulk_url(subscription), {"state": "failed"}).content.decode()
    assert "5 finished deliveries</strong> will be sent again" in page
    later = add_deliveries(subscription, 3, state=Delivery.State.FAILED, start=timezone.now() + timedelta(seconds=1))
    form = page.split('<form method="post" class="actions">')[1]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))

    response = admin_client.post(bulk_url(subscription), fields, follow=True)

    assert "Redelivering 5 deliveries" in response.content.decode()
    assert set(Delivery.objects.filter(id__in=[d.id for d in confirmed]).values_list("state", flat=True)) == {"pending"}
    assert set(Delivery.objects.filter(id__in=[d.id for d in later]).values_list("state", flat=True)) == {"failed"}


def test_when_the_confirmed_set_changed_nothing_is_sent_and_the_page_asks_again(admin_client, subscription):
    add_deliveries(subscription, 5, state=Delivery.State.FAILED)
    pending = add_deliveries(subscription, 1, state=Delivery.State.PENDING)
    page = admin_client.get(bulk_url(subscription), {"state": "failed"}).content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    assert fields["confirmed"] == "5"
    Delivery.objects.filter(id=pending[0].id).update(state=Delivery.State.FAILED)  # it failed for good meanwhile

    response = admin_client.post(bulk_url(subscription), fields)

    assert response.status_code == 409
    again = response.content.decode()
    assert "Nothing was redelivered: you confirmed 5, but 6 of the deliveries you confirmed now match" in again
    assert "6 finished deliveries</strong> will be sent again" in again and 'name="confirmed" value="6"' in again
    assert Delivery.objects.filter(state=Delivery.State.FAILED).count() == 6  # none sent
    assert not TrailEntry.objects.filter(subscription=subscription, action=TrailEntry.Action.REDELIVERED).exists()


@pytest.mark.parametrize("fields", [
    {},                                                                   # a form from before the confirmation
    {"confirmed": "5"},                                                   # no moment
    {"confirmed": "-1", "as_of": "2026-01-01T00:00:00+00:00"},
    {"confirmed": "99999999999", "as_of": "2026-01-01T00:00:00+00:00"},
    {"confirmed": "5", "as_of": "9999-12-31T23:59:59-14:00"},            # the end of the calendar, in UTC after it
    {"confirmed": "5", "as_of": "0001-01-01T00:00:00+14:00"},
    {"confirmed": "5", "as_of": "not a date"},
])
def test_a_post_without_a_readable_confirmation_asks_for_one_and_sends_nothing(admin_client, subscription, fields):
    add_deliveries(subscription, 5, state=Delivery.State.FAILED)

    response = admin_client.post(bulk_url(subscription), {"state": "failed", **fields})  # bad input: tampered

    assert response.status_code == 400
    page = response.content.decode()
    assert "Check how many deliveries will be sent again, then confirm." in page
    assert "5 finished deliveries</strong> will be sent again" in page
    assert Delivery.objects.filter(state=Delivery.State.FAILED).count() == 5


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_search_date_outside_the_calendar_in_utc_is_an_error_at_its_field(admin_client, subscription, stamp):
    # Bad input found by the console fuzz: read as ISO 8601 with a zone, in the years 10000 and 0 in UTC.
    add_deliveries(subscription, 2, state=Delivery.State.FAILED)
    for field in ("since", "until"):
        page = admin_client.get(detail(subscription), {field: stamp}).content.decode()
        assert "Enter a date and time between the years 1 and 9999." in page and event_links(page) == []
        response = admin_client.get(bulk_url(subscription), {field: stamp}, follow=True)
        assert response.status_code == 200 and "Correct the search first." in response.content.decode()


def test_a_ten_year_range_the_whole_calendar_and_the_millionth_page_answer_with_a_page(
        admin_client, subscription, django_assert_max_num_queries):
    """Bad input: a range 10 years wide, the whole calendar (years 1 to 9999), a page link a million pages deep
    (before the first delivery), and ?page=1000000 (the log has no page numbers: ignored). Each is one bounded
    query of the log (LIMIT 51), never a 5xx."""
    rows = add_deliveries(subscription, 60, start=timezone.now() - timedelta(days=2))
    newest = {str(d.id) for d in rows[-50:]}
    for params in ({"since": "2016-12-01T00:00", "until": "2026-12-31T00:00"},
                   {"since": "0001-01-01T00:00", "until": "9999-12-31T23:59"}, {"page": "1000000"}):
        response = admin_client.get(detail(subscription), params)
        page = response.content.decode()
        assert response.status_code == 200, params
        assert set(event_links(page)) == newest and 'rel="next">Older</a>' in page, params
    far = Delivery(id=uuid.uuid4(), created_at=rows[0].created_at - timedelta(seconds=50 * 1_000_000))
    log = reverse("console:subscription_log", args=[subscription.id])
    with django_assert_max_num_queries(12) as queries:
        response = admin_client.get(log, {"before": cursor_encode(far)})
    page = response.content.decode()
    assert response.status_code == 200 and event_links(page) == [] and "No older deliveries." in page
    log_queries = [q["sql"] for q in queries.captured_queries if Delivery._meta.db_table in q["sql"]
                   and "ORDER BY" in q["sql"]]
    assert log_queries and all("LIMIT 51" in sql for sql in log_queries), log_queries
