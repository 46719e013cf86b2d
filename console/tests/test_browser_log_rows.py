"""The Delivery Log a delivery a line, in Debian's Chromium on a desktop (1366x900) and a phone (390x844).

Event ids are shortened on screen (evt_ + the first 8 and last 4 hex digits) with the whole id in the link's title
and accessible name; a wait reason several rows share is said once above the log, its rows say "Waiting".
Bad input tried: 20 rows of every kind, among them errors of 164 characters with no space to break at.
Screenshots: docs/screenshots/91-*.png.
"""

import re

import pytest
from playwright.sync_api import expect

from conftest import make_subscription
from console.tests.test_browser_console import BOTH_SIZES, DESKTOP, check, detail_url, make_log
from console.tests.test_browser_receiver_controls import ERP, _waiting

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RATE_LIMIT = "Due now: waiting for its turn under the endpoint's rate limit"


@BOTH_SIZES
def test_each_delivery_is_one_line_with_a_short_id_and_a_shared_wait_said_once(
        site, org, alice, open_page, viewport, suffix):
    subscription, _ = make_subscription(org, url=ERP, created_by=alice, max_per_second=20)
    rows = make_log(subscription, count=17)  # retrying rows share one retry time: a second shared reason
    due = _waiting(subscription, 3)
    page = open_page(viewport)
    page.goto(detail_url(site, subscription))
    log = page.locator("#delivery-log")
    expect(log.locator("tbody tr")).to_have_count(20)

    reasons = log.locator(".log__waits li")
    expect(reasons.filter(has_text=RATE_LIMIT)).to_have_count(1)
    expect(reasons.filter(has_text=RATE_LIMIT)).to_contain_text("3 deliveries below")
    expect(reasons.filter(has_text="Waiting for its retry at")).to_have_count(1)
    waiting = log.locator("tbody .log__waiting")
    expect(waiting).to_have_count(3 + 4)
    for delivery in due:  # the row says "Waiting (n)"; its reader still hears the reason, in the row
        row = log.locator("tbody tr", has=page.get_by_role("link", name=f"evt_{delivery.event_id.hex}"))
        expect(row.locator(".log__waiting")).to_have_text(
            re.compile(r"^Waiting \(\d\): " + re.escape(f"{RATE_LIMIT} (rate limit 20/s)") + "$"))

    full = f"evt_{rows[0].event_id.hex}"
    link = log.get_by_role("link", name=full)  # the whole id is the link's accessible name
    expect(link).to_have_attribute("title", full)
    expect(link.locator("[aria-hidden=true]")).to_have_text(f"evt_{full[4:12]}…{full[-4:]}")
    expect(log.get_by_role("button", name=f"Copy event id {full}")).to_be_visible()

    if viewport == DESKTOP:
        heights = log.locator("tbody tr").evaluate_all("rows => rows.map(r => r.getBoundingClientRect().height)")
        line = log.locator("tbody td.log__type").first.evaluate(
            "td => parseFloat(getComputedStyle(td).lineHeight) || 1.2 * parseFloat(getComputedStyle(td).fontSize)")
        assert max(heights) - min(heights) < 1, f"rows of different heights: {sorted(set(heights))}"
        padded = log.locator("tbody td.log__type").first.evaluate(
            "td => parseFloat(getComputedStyle(td).paddingTop) + parseFloat(getComputedStyle(td).paddingBottom)")
        assert max(heights) < 2 * line + padded, f"a row takes more than a line: {max(heights)} px, line {line} px"
        for box in waiting.evaluate_all("ws => ws.map(w => w.getBoundingClientRect().width)"):
            assert box < 120, f"a waiting row repeats its reason: {box} px wide"
    check(page, f"91-log-one-line{suffix}")
