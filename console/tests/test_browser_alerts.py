"""Planned rotation, custom headers and the Notifications page in Debian's Chromium, at 1366x900 and 390x844.

Each page is checked as in test_browser_console: no wider than the viewport, axe-core
finds no violation, no console error; screenshots 60-66 go to docs/screenshots/.
"""

import pytest
from playwright.sync_api import expect

from console.tests.test_browser_console import BOTH_SIZES, check, detail_url
from organisations.models import Membership
from subscriptions.custom_headers import MASK, headers_for_sending
from subscriptions.models import Subscription

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

API_KEY = "sk_live_0123456789abcdef"


@BOTH_SIZES
def test_regenerate_with_an_overlap_then_stop_the_old_secret(site, subscription, open_page, viewport, suffix):
    page = open_page(viewport)
    page.goto(detail_url(site, subscription))
    page.get_by_role("link", name="Regenerate Secret").click()
    expect(page.get_by_text("as soon as you regenerate, the old secret stops working")).to_be_visible()
    expect(page.get_by_label("At once: only the new secret signs from the next delivery")).to_be_checked()
    page.get_by_label("Keep signing with the old secret too, for 6 hours").check()
    check(page, f"60-regenerate-overlap{suffix}")

    page.get_by_role("button", name="Regenerate Secret").click()
    expect(page.get_by_text("The old secret also signs every delivery until")).to_be_visible()
    check(page, f"61-secret-overlap{suffix}")
    assert Subscription.objects.get(id=subscription.id).old_secret_signs_until is not None

    page.get_by_role("link", name="I have saved it, continue").click()
    expect(page.get_by_text("The old secret also signs every delivery until")).to_be_visible()
    page.get_by_role("link", name="Stop the old secret now…").click()
    expect(page.get_by_text("From the next attempt, only the new secret signs.")).to_be_visible()
    check(page, f"62-stop-old-secret{suffix}")
    page.get_by_role("button", name="Stop the old secret now").click()
    expect(page.locator(".message", has_text="The old secret stopped signing")).to_be_visible()
    expect(page.get_by_text("The old secret also signs every delivery until")).to_have_count(0)
    assert Subscription.objects.get(id=subscription.id).previous_secret_until is None
    # The activity feed names what happened: Stop is not logged as a second "Regenerated the secret".
    feed = page.locator("section[aria-labelledby=trail-heading] .trail li")
    expect(feed.first).to_contain_text("Stopped the old secret")
    expect(feed.first).not_to_contain_text("Regenerated")
    expect(feed.filter(has_text="Regenerated the secret")).to_have_count(1)
    feed.first.scroll_into_view_if_needed()
    check(page, f"90-activity-old-secret-stopped{suffix}", full_page=False)


@BOTH_SIZES
def test_custom_headers_form_masks_secrets_and_shows_errors(site, subscription, open_page, viewport, suffix):
    page = open_page(viewport)
    page.goto(detail_url(site, subscription) + "edit/")
    page.get_by_label("Header 1 name").fill("X-Tenant")
    page.get_by_label("Header 1 value").fill("acme-north")
    page.get_by_role("button", name="Add header").click()  # one empty row at first: Add header for another
    page.get_by_label("Header 2 name").fill("X-Api-Key")
    page.get_by_label("Header 2 value").fill(API_KEY)
    page.get_by_label("Secret (header 2)").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved. The changes apply from the next event.")).to_be_visible()
    expect(page.get_by_text(f"X-Api-Key: {MASK}")).to_be_visible()
    assert API_KEY not in page.content()
    check(page, f"63-detail-headers{suffix}")
    stored = Subscription.objects.get(id=subscription.id).custom_headers
    assert headers_for_sending(stored=stored) == {"X-Tenant": "acme-north", "X-Api-Key": API_KEY}

    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_label("Header 2 value")).to_have_value(MASK)
    assert API_KEY not in page.content()
    check(page, f"64-headers-form{suffix}")

    page.get_by_label("Header 3 name").fill("Host")  # bad input: the sender's own header
    page.get_by_label("Header 3 value").fill("evil.example")
    page.get_by_role("button", name="Save").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link", name="Host is set by the sender")).to_be_visible()
    expect(page.locator(".headers__row.field--error")).to_contain_text("Host is set by the sender")
    check(page, f"65-headers-errors{suffix}")


@BOTH_SIZES
def test_the_notifications_page_turns_alerts_off_per_organisation(site, alice, other_org, open_page, viewport,
                                                                   suffix):
    Membership.objects.create(user=alice, organisation=other_org, role=Membership.Role.MEMBER)
    page = open_page(viewport)
    page.goto(site.url + "/administration/webhooks/")
    expect(page.get_by_label("Organisation")).to_have_value(str(alice.memberships.get(role="admin").organisation_id))
    page.get_by_role("link", name="Notifications").click()
    page.get_by_label("Email address").fill("alice@acme.test")
    group = page.get_by_role(
        "group", name="Email me when a webhook endpoint starts failing, is paused automatically, or loses deliveries")
    acme, globex = group.get_by_label("Acme Cultivation"), group.get_by_label("Globex Farms")
    expect(acme).to_be_checked()
    expect(globex).to_be_checked()
    expect(page.get_by_text("Only administrators of Globex Farms receive these emails.")).to_be_visible()
    acme.uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved your notification settings.")).to_be_visible()
    expect(acme).not_to_be_checked()
    expect(globex).to_be_checked()
    check(page, f"66-notifications{suffix}")
