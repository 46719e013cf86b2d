"""The seed's own steps, in Debian's Chromium, against a real worker and real HTTPS receivers.

Log in, Administration > Webhooks, Create Webhook, the secret once, Test Webhook
and its 2xx in the Delivery Log, Regenerate Secret (the next delivery verifies
with the new secret only), Edit and Save a new URL that the next event goes to,
Pause, Resume, Delete and confirm. Each page is saved to docs/screenshots/.
"""

import pytest
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import ROOT, make_subscription, wait_until
from delivery.models import Delivery
from delivery.tests.receiver import Receiver
from subscriptions.activity import record_activity
from subscriptions.models import Subscription

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 30_000
ORDER_TYPES = ["order.created", "order.status_changed", "shipment.shipped", "shipment.delivered", "capa.opened"]


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    # Console errors include Content-Security-Policy violations: the pages must cause none.
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("response", lambda r: page.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    yield page
    context.close()


@pytest.fixture
def second_receiver(tmp_path, receiver):
    """Another HTTPS endpoint, certified by the same CA that the worker trusts."""
    folder = tmp_path / "second"
    folder.mkdir()
    with Receiver(folder, ca=receiver.ca) as r:
        yield r


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_the_seeds_steps_in_the_browser(
    require_services, site, org, alice, receiver, second_receiver, worker, page
):
    # Log in.
    page.goto(site.url + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    shot(page, "01-login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()

    # 1. Navigate to Administration > Webhooks.
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_text("Administration", exact=True).click()
    nav.get_by_role("link", name="Webhooks", exact=True).click()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    expect(page.get_by_text("No webhooks yet")).to_be_visible()
    shot(page, "02-webhooks-empty")

    # 2-4. Click Create Webhook, enter the Endpoint URL, select Activity Types (select-all per category works).
    page.get_by_role("link", name="Create Webhook").click()
    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_label("Select all Cultivation").check()
    for label in ("Batch created", "Harvest recorded", "Drying complete", "Curing complete"):
        expect(page.get_by_label(label, exact=True)).to_be_checked()
    page.get_by_label("Select all Cultivation").uncheck()
    expect(page.get_by_label("Batch created", exact=True)).not_to_be_checked()
    page.get_by_label("Lot created", exact=True).check()
    page.get_by_label("Harvest recorded", exact=True).check()
    page.get_by_label("Description").fill("ERP integration (staging)")
    shot(page, "03-create")

    # Bad input first: an http:// URL and no activity type; errors at the fields, the typed URL kept.
    page.get_by_label("Endpoint URL").fill("http://insecure.example.com/hooks")
    page.get_by_label("Lot created", exact=True).uncheck()
    page.get_by_label("Harvest recorded", exact=True).uncheck()
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.locator("#id_url-error")).to_have_text("The URL must use HTTPS.")
    expect(page.locator("#activity-types-error")).to_have_text("Select at least one activity type.")
    expect(page.get_by_label("Endpoint URL")).to_have_value("http://insecure.example.com/hooks")
    expect(page.get_by_label("Description")).to_have_value("ERP integration (staging)")
    shot(page, "04-create-errors")
    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_label("Lot created", exact=True).check()
    page.get_by_label("Harvest recorded", exact=True).check()

    # 5. Click Create: the signing secret, once.
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", name="Save your signing secret immediately")).to_be_visible()
    secret = page.get_by_label("Signing secret").input_value()
    assert secret.startswith("whsec_")
    shot(page, "05-secret")
    # Neither the back button (after moving on) nor a reload brings it back.
    page.get_by_role("link", name="I have saved it, continue").click()
    expect(page.get_by_role("heading", name="Delivery Log")).to_be_visible()
    page.go_back()
    expect(page.get_by_text("was shown once and is not shown again")).to_be_visible()
    assert secret not in page.content()
    page.reload()
    expect(page.get_by_text("was shown once and is not shown again")).to_be_visible()
    assert secret not in page.content()
    subscription = Subscription.objects.get(organisation=org)
    page.goto(f"{site.url}/administration/webhooks/{subscription.id}/")

    # Test Webhook: the receiver gets the sample payload, signed, and the log shows the 2xx by itself.
    page.get_by_label("Activity type to test").select_option(label="Lot created")
    page.get_by_role("button", name="Test Webhook").click()
    (first,) = receiver.wait_for(1)
    payload = Webhook(secret).verify(first.body, first.headers)
    assert payload["type"] == "lot.created" and payload["test"] is True
    log = page.locator("#delivery-log")
    expect(log.get_by_text("HTTP 200")).to_be_visible()  # arrived through the live refresh, no reload
    expect(page.get_by_text("Sent a test")).to_be_visible()
    shot(page, "06-detail")

    # Opening the delivery shows the attempt: signature header (never the secret), body, response.
    log.get_by_role("link", name="evt_").first.click()
    expect(page.get_by_role("heading", name="Attempt 1")).to_be_visible()
    expect(page.get_by_text("webhook-signature")).to_be_visible()
    expect(page.get_by_role("button", name="Redeliver")).to_be_enabled()
    assert first.headers["webhook-signature"] in page.content()
    assert secret not in page.content()
    shot(page, "07-delivery")
    page.go_back()

    # Regenerate Secret: the warning, a confirmation, the new secret once.
    page.get_by_role("link", name="Regenerate Secret").click()
    expect(page.get_by_text("as soon as you regenerate, the old secret stops working")).to_be_visible()
    shot(page, "08-regenerate")
    page.get_by_role("button", name="Regenerate Secret").click()
    expect(page.get_by_role("heading", name="Save your signing secret immediately")).to_be_visible()
    new_secret = page.get_by_label("Signing secret").input_value()
    assert new_secret.startswith("whsec_") and new_secret != secret
    page.get_by_role("link", name="I have saved it, continue").click()
    page.get_by_role("button", name="Test Webhook").click()
    second = receiver.wait_for(2)[1]
    assert Webhook(new_secret).verify(second.body, second.headers)["test"] is True
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(second.body, second.headers)
    expect(page.get_by_text("Regenerated the secret")).to_be_visible()

    # Edit: a new Endpoint URL, Save; the next event goes there.
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_label("Lot created", exact=True)).to_be_checked()
    page.get_by_label("Endpoint URL").fill(second_receiver.url + "/v2")
    shot(page, "09-edit")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved. The changes apply from the next event.")).to_be_visible()
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-9"})
    (moved,) = second_receiver.wait_for(1)
    assert moved.path == "/hooks/v2"
    assert Webhook(new_secret).verify(moved.body, moved.headers)["id"] == event.webhook_id
    assert len(receiver.received) == 2

    # Pause: events are held; the card says so.
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Paused. New events are held")).to_be_visible()
    held = record_activity(organisation=org, activity_type="harvest.recorded", data={"harvest_id": "H-7"})
    assert Delivery.objects.get(event=held).state == Delivery.State.HELD
    # Two more webhooks for the page's picture (their types are never emitted here).
    make_subscription(org, url="https://erp.example.com/webhooks/groweriq", activity_types=ORDER_TYPES,
                      description="Orders to the ERP", created_by=alice)
    make_subscription(org, url="https://qa.example.org/hooks/lab", activity_types=["lab_results.received"],
                      created_by=alice)
    nav.get_by_text("Administration", exact=True).click()
    nav.get_by_role("link", name="Webhooks", exact=True).click()
    expect(page.get_by_text("1 held delivery")).to_be_visible()
    expect(page.locator(".card").get_by_text("Paused", exact=True)).to_be_visible()
    shot(page, "10-webhooks-list")

    # Resume: the held delivery goes out.
    page.get_by_role("link", name=second_receiver.url + "/v2", exact=True).click()
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_text("1 held delivery is being sent")).to_be_visible()
    resumed = second_receiver.wait_for(2)[1]
    assert Webhook(new_secret).verify(resumed.body, resumed.headers)["id"] == held.webhook_id
    wait_until(lambda: Delivery.objects.get(event=held).state == Delivery.State.SUCCEEDED, message="resumed delivery")

    # The same detail page on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#delivery-log").get_by_text("HTTP 200").first).to_be_visible()
    shot(page, "11-detail-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    # Delete, and confirm.
    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_text("cancels any pending deliveries")).to_be_visible()
    expect(page.get_by_text("This action cannot be undone.")).to_be_visible()
    shot(page, "12-delete")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Deleted the webhook")).to_be_visible()
    expect(page.get_by_role("link", name=second_receiver.url + "/v2")).to_have_count(0)
    assert Subscription.objects.get(id=subscription.id).deleted_at is not None
    record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-10"})
    assert len(second_receiver.received) == 2
    assert page.errors == []


def test_pages_work_without_javascript(require_services, site, org, alice, browser):
    """Create, read the secret, send a test and see it in the log with JavaScript switched off."""
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(site.url + "/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_text("Administration", exact=True).click()  # a <details> menu: no script needed
    nav.get_by_role("link", name="Webhooks", exact=True).click()
    page.get_by_role("link", name="Create Webhook").click()
    expect(page.get_by_label("Select all Cultivation")).to_be_hidden()  # an enhancement only
    page.get_by_label("Endpoint URL").fill("https://erp.example.com/hooks")
    page.get_by_label("Order created", exact=True).check()
    page.get_by_role("button", name="Create", exact=True).click()
    assert page.get_by_label("Signing secret").input_value().startswith("whsec_")
    expect(page.get_by_role("button", name="Copy")).to_be_hidden()
    page.get_by_role("link", name="I have saved it, continue").click()
    page.get_by_role("button", name="Test Webhook").click()
    log = page.locator("#delivery-log")
    expect(log.get_by_text("order.created")).to_be_visible()
    expect(log.get_by_text("Refreshing while deliveries are pending")).to_be_hidden()
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    context.close()
