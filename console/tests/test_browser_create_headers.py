"""Custom headers on Create in Chromium at 1366 and 390 px: one empty row, "Add header" for another, Enter still
creates; axe-core finds nothing. Screenshot: docs/screenshots/76-*.
"""

import pytest
from playwright.sync_api import expect

from console.tests.test_browser_console import BOTH_SIZES, check
from subscriptions.custom_headers import headers_for_sending
from subscriptions.models import Subscription

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@BOTH_SIZES
def test_create_with_two_custom_headers(site, org, open_page, viewport, suffix):
    page = open_page(viewport)
    page.goto(site.url + "/administration/webhooks/create/")
    page.get_by_label("Endpoint URL").fill("https://erp.example.com/in")
    page.get_by_label("Lot created", exact=True).check()
    page.get_by_label("Header 1 name").fill("X-Api-Key")
    page.get_by_label("Header 1 value").fill("sk_live_0123456789")
    page.get_by_label("Secret (header 1)").check()
    expect(page.get_by_label("Header 2 name")).to_have_count(0)
    page.get_by_role("button", name="Add header").click()
    expect(page.get_by_label("Header 1 name")).to_have_value("X-Api-Key")
    expect(page.get_by_label("Secret (header 1)")).to_be_checked()
    page.get_by_label("Header 2 name").fill("X-Tenant")
    page.get_by_label("Header 2 value").fill("acme")
    check(page, f"76-create-headers{suffix}")
    page.get_by_label("Header 2 value").press("Enter")  # the form's default button creates, it adds no row
    expect(page.get_by_role("heading", name="Signing secret", exact=True)).to_be_visible()
    created = Subscription.objects.get(url="https://erp.example.com/in")
    assert headers_for_sending(stored=created.custom_headers) == {"X-Api-Key": "sk_live_0123456789",
                                                                  "X-Tenant": "acme"}


@BOTH_SIZES
def test_see_and_edit_the_payload_opens_on_the_type_just_chosen(site, org, alice, open_page, viewport, suffix):
    from conftest import make_subscription

    subscription, _ = make_subscription(org, activity_types=["lot.created", "harvest.recorded"], created_by=alice)
    page = open_page(viewport)
    page.goto(f"{site.url}/administration/webhooks/{subscription.id}/")
    page.get_by_label("Activity type to test").select_option("harvest.recorded")
    page.get_by_role("link", name="See and edit the payload first").click()
    expect(page.get_by_role("heading", name="Test Webhook")).to_be_visible()
    expect(page.locator("#test-type-pick")).to_have_value("harvest.recorded")
