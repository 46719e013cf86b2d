"""The Events page in Debian's Chromium at 1366 and 390 px: an event id pasted in the Webhooks search finds the
event across every webhook, with each delivery's state; axe-core finds nothing. Screenshots: docs/screenshots/58-*.
"""

import pytest
from playwright.sync_api import expect

from console.tests.test_browser_console import BOTH_SIZES, check
from console.tests.test_views_events import three_webhooks  # noqa: F401 - a fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@BOTH_SIZES
def test_an_event_id_in_the_webhooks_search_finds_it_across_webhooks(
        site, three_webhooks, open_page, viewport, suffix):  # noqa: F811 - fixtures
    (erp, wms, old), event = three_webhooks
    page = open_page(viewport)
    page.goto(site.url + "/administration/webhooks/")
    menu = page.locator("details.menu")
    menu.locator("summary").click()
    expect(menu.get_by_role("link", name="Events")).to_be_visible()
    page.keyboard.press("Escape")  # closes the Administration menu, focus back on it
    expect(menu.get_by_role("link", name="Events")).to_be_hidden()
    expect(menu.locator("summary")).to_be_focused()
    page.get_by_label("Search URL or description").fill(event.webhook_id)
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("heading", name="Events", level=1)).to_be_visible()
    item = page.locator(f"#{event.webhook_id}")
    expect(item).to_contain_text(event.webhook_id)
    expect(item.get_by_role("row", name=erp.url)).to_contain_text("Succeeded")
    expect(item.get_by_role("row", name=wms.url)).to_contain_text("Failed")
    expect(item.get_by_role("row", name=old.url)).to_contain_text("(deleted)")
    check(page, f"58-events-search{suffix}")

    item.get_by_role("link", name=wms.url).click()
    expect(page.get_by_role("heading", name=f"Delivery {event.webhook_id}")).to_be_visible()
    page.get_by_role("link", name=f"{event.webhook_id} to every webhook").click()
    expect(page.locator(f"#{event.webhook_id}")).to_be_visible()
    page.get_by_role("textbox", name="Event id").fill("evt_123")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("Enter a whole event id")).to_be_visible()
    check(page, f"59-events-bad-id{suffix}")
