"""The "failed for good" banner in Debian's Chromium at 1366 and 390 px, on the card and the webhook's page, and the
Notifications page's rules; axe-core finds nothing. Screenshots: docs/screenshots/72-* to 74-*.
"""

import pytest
from playwright.sync_api import expect

from conftest import make_subscription
from console.tests.test_browser_console import BOTH_SIZES, check
from console.tests.test_views_lost import lose

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@BOTH_SIZES
def test_the_lost_banner_leads_to_retrying_them(site, org, alice, open_page, viewport, suffix):
    subscription, _ = make_subscription(org, url="https://erp.example.com/in", created_by=alice)
    make_subscription(org, url="https://warehouse.example.com/in", created_by=alice)
    lose(subscription, 7, hours_ago=3)
    page = open_page(viewport)
    page.goto(site.url + "/administration/webhooks/")
    card = page.locator(".card", has_text="erp.example.com")
    expect(card.locator(".lost")).to_contain_text("7 deliveries failed for good since")
    expect(page.locator(".card", has_text="warehouse.example.com").locator(".lost")).to_have_count(0)
    check(page, f"72-list-lost{suffix}")

    card.get_by_role("link", name="https://erp.example.com/in").click()
    banner = page.locator(".lost")
    expect(banner).to_be_in_viewport()
    banner.get_by_role("link", name="Retry failed deliveries…").click()
    expect(page.get_by_role("button", name="Retry 7 failed deliveries")).to_be_visible()
    check(page, f"73-lost-retry-confirm{suffix}")

    page.goto(site.url + "/accounts/notifications/")
    expect(page.get_by_text("Deliveries lost")).to_be_visible()
    expect(page.get_by_text("at most one email an hour, with how many and the first event ids")).to_be_visible()
    assert page.get_by_label("Email address").bounding_box()["width"] > 250  # styled like the other fields
    check(page, f"74-notifications-rules{suffix}")

