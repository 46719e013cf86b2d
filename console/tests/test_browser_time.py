"""One time rule, in Chromium with the browser in New York (America/New_York), at 1366 and 390 px: the log's times and
the From/To filters are in the viewer's zone, 24-hour, with UTC on hover; a time copied from a log row into From
finds that row. Screenshots: docs/screenshots/75-*.
"""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conftest import make_subscription
from console.tests.test_browser_console import BOTH_SIZES, check, detail_url
from console.tests.test_browser_health import _delivery
from delivery.models import Delivery

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@BOTH_SIZES
def test_a_time_copied_from_the_log_finds_its_row_in_new_york(site, org, alice, open_page, viewport, suffix):
    subscription, _ = make_subscription(org, url="https://erp.example.com/in", created_by=alice)
    now = timezone.now().replace(microsecond=0)
    rows = [_delivery(subscription, at=now - timedelta(hours=h, seconds=h * 7), state=Delivery.State.SUCCEEDED,
                      attempts=1, code=200) for h in (3, 2, 1)]
    Delivery.objects.bulk_create(rows)
    older, middle, newer = rows
    there = middle.created_at.astimezone(ZoneInfo("America/New_York"))
    zone, hours_behind = there.tzname(), -there.utcoffset().total_seconds() / 3600  # EST and 5 in December
    page = open_page(viewport, timezone_id="America/New_York")
    page.goto(detail_url(site, subscription))
    from_field = page.get_by_label(f"From ({zone})")
    expect(from_field).to_be_visible()  # the viewer's zone, named as in the log
    row = page.locator("#delivery-log tbody tr", has_text=f"evt_{middle.event_id.hex}")
    shown = row.locator("time").inner_text()
    utc = row.locator("time").get_attribute("title")
    # 24-hour, in New York, the zone named: five hours behind the UTC time on hover.
    assert re.match(rf"^\d{{1,2}} [A-Z][a-z]{{2}} \d{{4}}, \d{{2}}:\d{{2}}:\d{{2}} {zone}", shown), shown
    local_hour, utc_hour = int(shown.split(", ")[1][:2]), int(utc.split(", ")[1][:2])
    assert (utc_hour - local_hour) % 24 == hours_behind

    from_field.fill(shown)  # the whole cell as copied: the zone and "(… ago)" too
    expect(from_field).to_have_attribute("title", utc)
    page.get_by_role("button", name="Search").click()
    log = page.locator("#delivery-log tbody tr")
    expect(log).to_have_count(2)
    expect(log.nth(1)).to_contain_text(f"evt_{middle.event_id.hex}")  # that row, and the newer one
    expect(page.locator("#delivery-log")).not_to_contain_text(f"evt_{older.event_id.hex}")
    # The filter shows back what was typed, in New York time, with UTC on hover.
    expect(from_field).to_have_value(shown.split(f" {zone}")[0])
    expect(from_field).to_have_attribute("title", utc)
    check(page, f"75-time-new-york{suffix}")
