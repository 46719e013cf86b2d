"""Try now in Debian's Chromium at 1366 and 390 px: from the open breaker's Health line to the confirmation, one
request to the real receiver, and the flash that says what happened; axe-core finds nothing on either page.
Screenshots: docs/screenshots/70-* and 71-*.
"""

import pytest
from playwright.sync_api import expect

from console.tests.test_browser_console import BOTH_SIZES, check, detail_url
from console.tests.test_views_try_now import broken  # noqa: F401 - a fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@BOTH_SIZES
def test_send_the_next_delivery_now_closes_the_breaker_and_says_so(
        site, broken, receiver, open_page, viewport, suffix):  # noqa: F811 - fixtures
    page = open_page(viewport)
    page.goto(detail_url(site, broken))
    expect(page.locator(".page-head .badge")).to_have_text("Breaker open")
    page.get_by_role("link", name="Send the next delivery now…").click()
    expect(page.get_by_role("heading", name="Send the next delivery now")).to_be_visible()
    check(page, f"70-try-now-confirm{suffix}")
    page.get_by_role("button", name="Send the next delivery now").click()
    expect(page.get_by_text("now: HTTP 200 in")).to_be_visible()
    expect(page.get_by_text("The breaker is closed; the waiting deliveries are being sent.")).to_be_visible()
    assert len(receiver.received) == 1
    expect(page.locator(".page-head .badge")).to_have_text("Healthy")
    check(page, f"71-try-now-done{suffix}")
