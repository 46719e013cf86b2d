"""The operator's console in Debian's Chromium, on a desktop (1366x900) and a phone (390x844).

Every page, in each of its states (empty, a full log, errors, flash messages), is
checked three ways: the document is no wider than the viewport, axe-core (the npm
package in console/tests/node, injected into the page) finds no violation,
and the page makes no console error (a Content-Security-Policy violation is one).
Each is saved to docs/screenshots/.
"""

import json
import re
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conftest import ROOT, make_organisation, make_subscription, make_user
from delivery.models import Attempt, Delivery, Event
from subscriptions.models import Subscription

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = ROOT / "console" / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
BOTH_SIZES = pytest.mark.parametrize(("viewport", "suffix"), [(DESKTOP, ""), (PHONE, "-phone")])
LONG_WORD = "ERP-integration-for-the-north-greenhouse-" * 4  # 164 characters, no space to break at


# The elements that reach past the viewport's right edge, for the failure message.
WIDEST = """() => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(-5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def make_log(subscription, *, count=60):
    """Bulk-insert a log of every kind of row (newest first): retrying, failed, succeeded, held, cancelled."""
    now = timezone.now()
    kinds = [
        (Delivery.State.PENDING, 2, 503, "HTTP 503: Service Unavailable"),
        (Delivery.State.FAILED, 8, None, "Connection refused by 203.0.113.7:443 after 10 s " + LONG_WORD),
        (Delivery.State.SUCCEEDED, 1, 200, ""),
        (Delivery.State.SUCCEEDED, 3, 200, ""),
        (Delivery.State.CANCELLED, 0, None, "Cancelled: the subscription was deleted."),
    ]
    rows = []
    for i in range(count):
        state, attempts, code, error = kinds[i % len(kinds)]
        at = now - timedelta(minutes=3 * i + 1)
        event = Event.objects.create(organisation=subscription.organisation, activity_type="lot.created",
                                     body='{"id": "evt", "data": {"lot_id": "LOT-1"}}', created_at=at)
        rows.append(Delivery(
            id=uuid.uuid4(), event=event, subscription=subscription, activity_type="lot.created", state=state,
            attempt_count=attempts, last_status_code=code, last_error=error, created_at=at,
            next_attempt_at=now + timedelta(minutes=5) if state == Delivery.State.PENDING else None,
            completed_at=at if state in (Delivery.State.SUCCEEDED, Delivery.State.FAILED) else None,
        ))
    Delivery.objects.bulk_create(rows)
    for delivery in rows[:3]:
        for number in range(1, delivery.attempt_count + 1):
            Attempt.objects.create(
                delivery=delivery, number=number, url=subscription.url, started_at=delivery.created_at,
                duration_ms=41, request_headers={"webhook-id": f"evt_{delivery.event_id.hex}"},
                status_code=delivery.last_status_code, response_headers={"content-type": "application/json"},
                response_body='{"ok": false, "reason": "' + LONG_WORD + '"}',
            )
    return rows


@pytest.fixture
def world(org, alice):
    """acme: 37 webhooks (one with a long description and a full log, one paused with held work)."""
    for i in range(34):
        make_subscription(org, url=f"https://branch-{i:02}.example.net/hooks/in", activity_types=["order.created"])
    main, _ = make_subscription(org, url="https://erp.example.com/webhooks/groweriq/" + "x" * 60,
                                activity_types=["lot.created", "order.created", "harvest.recorded",
                                                "shipment.shipped", "capa.opened"],
                                description=LONG_WORD, created_by=alice)
    log = make_log(main)
    paused, _ = make_subscription(org, url="https://qa.example.org/hooks/lab", activity_types=["lot.created"],
                                  created_by=alice)
    Subscription.objects.filter(id=paused.id).update(state=Subscription.State.PAUSED, paused_at=timezone.now(),
                                                     paused_reason="Every attempt failed for 5 days")
    held = make_log(paused, count=3)
    Delivery.objects.filter(id__in=[d.id for d in held]).update(state=Delivery.State.HELD, last_status_code=401)
    empty, _ = make_subscription(org, url="https://empty.example.com/in", created_by=alice)
    return {"main": Subscription.objects.get(id=main.id), "paused": Subscription.objects.get(id=paused.id),
            "empty": empty, "log": log}


def detail_url(site, subscription) -> str:
    return f"{site.url}/administration/webhooks/{subscription.id}/"


def check(page, name: str, *, status_errors_ok: bool = False, full_page: bool = True) -> None:
    """Assert the page fits its viewport and axe-core finds nothing; save the screenshot."""
    page.wait_for_load_state("load")
    width, viewport = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    widest = page.evaluate(WIDEST) if width > viewport else []
    assert width <= viewport, f"{name}: the document is {width} px wide in a {viewport} px viewport: {widest}"
    assert AXE.is_file(), "axe-core is missing: run `npm ci --prefix console/tests/node`"
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())  # through the DevTools protocol: the page's CSP stays as it is
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    violations = [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in result["violations"]]
    assert violations == [], f"{name}: {violations}"
    errors = [e for e in page.errors if not (status_errors_ok and "status of 4" in e)]
    assert errors == [], f"{name}: {errors}"
    page.errors.clear()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


@BOTH_SIZES
def test_list_pages_fit_and_pass_axe(site, world, open_page, viewport, suffix):
    page = open_page(viewport)
    page.goto(site.url + "/administration/webhooks/")
    expect(page.get_by_text("1–30 of 37 webhooks")).to_be_visible()
    expect(page.get_by_text(LONG_WORD)).to_be_visible()
    card = page.locator(".card", has_text=LONG_WORD)
    box, card_box = page.get_by_text(LONG_WORD).bounding_box(), card.bounding_box()
    assert box["x"] + box["width"] <= card_box["x"] + card_box["width"] + 1  # the long word stays in its card
    paused = page.locator(".card", has_text="qa.example.org")
    expect(paused.get_by_text("Held", exact=True)).to_be_visible()
    expect(paused.get_by_text("HTTP 401")).to_have_count(0)  # the state, never mixed with an old status code
    check(page, f"20-list-cards{suffix}")

    page.get_by_label("Show as").select_option("table")
    page.get_by_label("State").select_option("paused")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("1–1 of 1 webhook")).to_be_visible()
    page.get_by_label("State").select_option("")
    page.get_by_label("Search URL or description").fill("example.net")
    page.get_by_label("Sort by").select_option("url")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("1–30 of 34 webhooks")).to_be_visible()
    expect(page.locator("table.table--webhooks tbody tr").first).to_contain_text("branch-00")
    check(page, f"21-list-table{suffix}")
    page.get_by_role("link", name="Next").click()
    expect(page.get_by_text("31–34 of 34 webhooks")).to_be_visible()

    page.get_by_label("Search URL or description").fill("nothing-like-this")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("No webhooks match this search.")).to_be_visible()
    check(page, f"22-list-no-match{suffix}")


@BOTH_SIZES
def test_empty_list_catalogue_and_404_fit_and_pass_axe(site, db, open_page, viewport, suffix):
    lone = make_organisation("lonely", "Lonely Farms")
    erin = make_user("erin", lone)
    page = open_page(viewport, user=erin)
    page.goto(site.url + "/administration/webhooks/")
    expect(page.get_by_text("No webhooks yet")).to_be_visible()
    check(page, f"23-list-empty{suffix}")
    page.goto(site.url + "/administration/webhooks/events/")
    expect(page.get_by_role("heading", name="Event catalogue")).to_be_visible()
    check(page, f"24-catalogue{suffix}", full_page=False)  # the whole catalogue is 1.7 MB of picture
    page.goto(site.url + f"/administration/webhooks/{uuid.uuid4()}/")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    check(page, f"25-not-found{suffix}", status_errors_ok=True)


@BOTH_SIZES
def test_detail_log_search_and_bulk_redeliver(site, world, open_page, viewport, suffix):
    main = world["main"]
    page = open_page(viewport, timezone_id="America/Toronto")
    page.goto(f"{site.url}/administration/webhooks/{main.id}/")
    log = page.locator("#delivery-log")
    expect(log.locator("tbody tr")).to_have_count(50)
    check(page, f"26-detail-full-log{suffix}")
    # Times: the viewer's zone on the page, UTC in the tooltip, and how long ago.
    first_time = log.locator("td.log__time time").first
    expect(first_time).to_have_attribute("title", re.compile(r" UTC$"))
    assert "UTC" not in first_time.inner_text() and "ago" in first_time.inner_text()
    if viewport is PHONE:
        row = log.locator("tbody tr").first.bounding_box()
        assert row["height"] < 150, f"a log row is {row['height']} px tall on a phone"

    # Search by the whole event id of a delivery deep in the log.
    wanted = world["log"][55]
    page.get_by_role("textbox", name="Event id").fill(f"evt_{wanted.event_id.hex}")
    page.get_by_role("button", name="Search").click()
    expect(log.locator("tbody tr")).to_have_count(1)
    expect(log.get_by_role("link", name=f"evt_{wanted.event_id.hex}")).to_be_visible()
    expect(log.get_by_role("button", name=f"Copy event id evt_{wanted.event_id.hex}")).to_be_visible()
    check(page, f"27-log-search-event{suffix}")

    # A cut id is an error at the field.
    page.get_by_role("textbox", name="Event id").fill(f"evt_{wanted.event_id.hex[:9]}")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("Enter a whole event id")).to_be_visible()
    check(page, f"28-log-search-error{suffix}")

    # Failed deliveries of a date range, then Redeliver them: the count first.
    page.get_by_role("textbox", name="Event id").fill("")
    page.get_by_label("State").select_option("failed")
    # The filters are in the viewer's zone too (Toronto), and say so.
    toronto = (timezone.now() - timedelta(hours=2)).astimezone(ZoneInfo("America/Toronto"))
    page.get_by_label(f"From ({toronto.tzname()})").fill(toronto.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Search").click()
    failed = [d for d in world["log"] if d.state == Delivery.State.FAILED and d.created_at > timezone.now()
              - timedelta(hours=2)]
    expect(log.locator("tbody tr")).to_have_count(len(failed))
    page.get_by_role("link", name="Redeliver these filtered deliveries…").click()
    expect(page.get_by_text(f"{len(failed)} finished deliveries will be sent again")).to_be_visible()
    check(page, f"29-bulk-redeliver-confirm{suffix}")
    page.get_by_role("button", name=f"Redeliver {len(failed)} deliveries").click()
    expect(page.get_by_text(f"Redelivering {len(failed)} deliveries")).to_be_visible()
    assert Delivery.objects.filter(id__in=[d.id for d in failed], state=Delivery.State.PENDING).count() == len(failed)
    expect(page.get_by_label("State")).to_have_value("failed")  # back to the same search
    check(page, f"30-detail-flash{suffix}")


@BOTH_SIZES
def test_recover_delete_and_delivery_pages_say_their_counts(site, world, open_page, viewport, suffix):
    main = world["main"]
    page = open_page(viewport, timezone_id="Asia/Kolkata")
    page.goto(detail_url(site, main))
    expect(page.get_by_label("Retry failed deliveries since (UTC)")).to_be_visible()
    since = (timezone.now() - timedelta(days=1)).replace(hour=9, minute=16)
    page.get_by_label("Retry failed deliveries since (UTC)").fill(since.strftime("%Y-%m-%dT%H:%M"))
    # The input is UTC; beside it, the same moment in the viewer's zone (UTC+05:30 here).
    expect(page.locator("#recover-local")).to_contain_text("14:46")
    expect(page.locator("#recover-local")).to_contain_text("in your time zone")
    page.get_by_role("button", name="Retry failed…").click()
    failed = sum(1 for d in world["log"] if d.state == Delivery.State.FAILED)
    expect(page.get_by_text(f"{failed} failed deliveries created since")).to_be_visible()
    check(page, f"31-recover-confirm{suffix}")
    page.get_by_role("link", name="Cancel").click()

    page.get_by_role("link", name="Delete").click()
    unfinished = sum(1 for d in world["log"] if d.state == Delivery.State.PENDING)
    expect(page.get_by_text(f"{unfinished} pending deliveries will be cancelled.")).to_be_visible()
    check(page, f"32-delete-confirm{suffix}")

    delivery = world["log"][1]  # failed, with attempts and a long error
    page.goto(f"{site.url}/administration/webhooks/{main.id}/deliveries/{delivery.id}/")
    expect(page.get_by_role("heading", name="Attempt 1")).to_be_visible()
    check(page, f"33-delivery{suffix}")


@BOTH_SIZES
def test_test_webhook_on_a_paused_webhook_and_its_payload_errors(site, world, open_page, viewport, suffix):
    page = open_page(viewport)
    page.goto(detail_url(site, world["paused"]))
    expect(page.get_by_text("This webhook is paused: a test is held")).to_be_visible()
    check(page, f"34-detail-paused{suffix}")
    page.get_by_role("link", name="See and edit the payload first").click()
    expect(page.get_by_text("This webhook is paused.")).to_be_visible()
    payload = page.get_by_label("Payload data for lot.created (JSON)")
    expect(payload).to_contain_text('"lot_id"')
    sample = json.loads(payload.input_value())
    check(page, f"35-test-payload{suffix}")

    payload.fill('{"lot_id": 5}')
    page.get_by_role("button", name="Send test (held until Resume)").click()
    expect(page.get_by_role("heading", name="The test was not sent")).to_be_visible()
    assert page.evaluate("() => document.activeElement.id") == "error-summary"
    check(page, f"36-test-payload-errors{suffix}", status_errors_ok=True)

    page.get_by_label("Payload data for lot.created (JSON)").fill(json.dumps({**sample, "lot_id": "LOT-42"}))
    page.get_by_role("button", name="Send test (held until Resume)").click()
    message = page.locator(".message")
    expect(message).to_contain_text("Test held: Lot created (evt_")
    check(page, f"37-test-held-flash{suffix}")
    event = Event.objects.filter(is_test=True).get()
    assert '"LOT-42"' in event.body and Delivery.objects.get(event=event).state == Delivery.State.HELD


@BOTH_SIZES
def test_create_errors_take_focus_and_a_duplicate_url_asks_first(site, world, open_page, viewport, suffix):
    page = open_page(viewport)
    page.goto(site.url + "/administration/webhooks/create/")
    check(page, f"38-create{suffix}")
    page.get_by_label("Endpoint URL").fill("https://hooks.example.com/" + "a" * 2100)
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", name="There are problems with this webhook")).to_be_visible()
    assert page.evaluate("() => document.activeElement.id") == "error-summary"
    expect(page.get_by_text("The URL must be at most 2,048 characters.").first).to_be_visible()
    assert len(page.get_by_label("Endpoint URL").input_value()) == 26 + 2100  # nothing cut
    check(page, f"39-create-errors{suffix}", status_errors_ok=True)

    page.get_by_label("Endpoint URL").fill("https://qa.example.org/hooks/lab")
    page.get_by_label("Lot created", exact=True).check()
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_text("already has a webhook to this URL").first).to_be_visible()
    check(page, f"40-create-duplicate{suffix}", status_errors_ok=True)
    page.get_by_label("Yes, add another webhook to this URL").check()
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", name="Save your signing secret immediately")).to_be_visible()
    check(page, f"41-secret{suffix}")
    assert Subscription.objects.filter(url="https://qa.example.org/hooks/lab").count() == 2

    # The new webhook: an empty log, its edit form, Regenerate Secret, then the login page.
    page.get_by_role("link", name="I have saved it, continue").click()
    expect(page.get_by_text("No deliveries yet. Use Test Webhook to send a sample payload.")).to_be_visible()
    check(page, f"42-detail-empty{suffix}")
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_label("Lot created", exact=True)).to_be_checked()
    check(page, f"43-edit{suffix}")
    page.get_by_role("link", name="Cancel").click()
    page.get_by_role("link", name="Regenerate Secret").click()
    check(page, f"44-regenerate{suffix}")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    check(page, f"45-login{suffix}")


def test_the_live_log_is_announced_politely(site, world, open_page):
    main = world["main"]
    page = open_page(DESKTOP)
    page.goto(f"{site.url}/administration/webhooks/{main.id}/")
    status = page.locator("[data-log-status]")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_text("")
    Delivery.objects.filter(subscription=main, state=Delivery.State.PENDING).update(
        state=Delivery.State.SUCCEEDED, last_status_code=200, last_error="", next_attempt_at=None)
    expect(status).to_have_text("Delivery Log updated. Every delivery shown has finished.")
    expect(page.locator("#delivery-log").get_by_text("Retrying")).to_have_count(0)
    assert page.errors == []


def test_a_refresh_answering_while_the_user_types_a_search_keeps_what_they_typed(site, world, open_page):
    """The CI run of 909d79d lost a typed event id: the live log's refresh had left before the user
    focused the field and replaced the form when its answer came. Bad input tried: a refresh held
    until the id is typed, then one after the focus has moved on from the typed field."""
    main = world["main"]
    page = open_page(DESKTOP)
    held = []

    def the_log(url):
        return f"/administration/webhooks/{main.id}/log/" in url

    page.route(the_log, lambda route: held.append(route))
    with page.expect_request(lambda request: the_log(request.url), timeout=10_000):  # the refresh leaves
        page.goto(detail_url(site, main))
    log = page.locator("#delivery-log")
    wanted = world["log"][55]
    field = page.get_by_role("textbox", name="Event id")
    field.fill(f"evt_{wanted.event_id.hex}")
    held[0].continue_()  # its answer comes after the typing
    page.unroute(the_log)
    expect(log.get_by_text("Refresh paused while you edit the search…")).to_be_visible()
    expect(field).to_have_value(f"evt_{wanted.event_id.hex}")
    page.get_by_role("heading", name="Delivery Log").click()  # the focus moves on; the text stays typed
    page.wait_for_timeout(2500)  # one refresh period (2 s) and a half: the refresh looks and waits again
    expect(field).to_have_value(f"evt_{wanted.event_id.hex}")
    expect(log.get_by_text("Refresh paused while you edit the search…")).to_be_visible()

    field.fill("")  # back to what the page came with: the refresh goes on
    page.get_by_role("heading", name="Delivery Log").click()
    expect(log.get_by_text("Refreshing while deliveries are pending…")).to_be_visible(timeout=10_000)
    with page.expect_response(lambda response: the_log(response.url), timeout=10_000):
        pass  # a refresh answered and replaced the log
    field = page.get_by_role("textbox", name="Event id")
    field.fill(f"evt_{wanted.event_id.hex}")
    page.get_by_role("button", name="Search").click()
    expect(log.locator("tbody tr")).to_have_count(1)
    assert page.errors == []


def test_search_and_the_test_payload_work_without_javascript(site, world, open_page):
    main = world["main"]
    page = open_page(PHONE, java_script_enabled=False)
    page.goto(detail_url(site, main))
    log = page.locator("#delivery-log")
    expect(log.locator("td.log__time time").first).to_contain_text(" UTC")  # the server's own text
    wanted = world["log"][7]
    page.get_by_role("textbox", name="Event id").fill(wanted.event_id.hex)
    page.get_by_role("button", name="Search").click()
    expect(log.locator("tbody tr")).to_have_count(1)
    expect(log.get_by_role("button", name=f"Copy event id evt_{wanted.event_id.hex}")).to_be_hidden()

    page.get_by_role("link", name="See and edit the payload first").click()
    page.get_by_label("Activity type", exact=True).select_option(label="Order created")
    page.get_by_role("button", name="Show its sample").click()
    expect(page.get_by_label("Payload data for order.created (JSON)")).to_contain_text('"order_number"')
    page.get_by_role("button", name="Send test").click()
    expect(page.locator(".message")).to_contain_text("Test sent: Order created (evt_")
    assert Event.objects.filter(is_test=True, activity_type="order.created").count() == 1
