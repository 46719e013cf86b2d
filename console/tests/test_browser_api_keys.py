"""Administration > API keys in Debian's Chromium: create a key (shown once), use it, see it used, revoke it.

Checked as in test_browser_console: no wider than the viewport, axe-core finds no violation, no console
error; screenshots 70-73 go to docs/screenshots/.
"""

import pytest
import requests
from playwright.sync_api import expect

from api.models import ApiKey
from console.tests.test_browser_console import BOTH_SIZES, SCREENSHOTS, check

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@BOTH_SIZES
def test_an_admin_creates_a_key_sees_it_once_uses_it_and_revokes_it(site, subscription, open_page, viewport, suffix):
    page = open_page(viewport)
    page.goto(site.url + "/administration/webhooks/")
    page.locator("summary", has_text="Administration").click()
    page.get_by_role("link", name="API keys").first.click()
    expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()
    page.get_by_role("button", name="Create API key").click()  # bad input: no name
    expect(page.get_by_text("This field is required.")).to_be_visible()
    page.get_by_label("Name").fill("ERP sync")
    page.get_by_label("Events: post activities (POST /api/v1/events)").check()
    page.get_by_label("Expires").select_option(label="In 90 days")
    check(page, f"70-api-keys-form{suffix}", status_errors_ok=True)  # the refused POST before: its 400
    page.get_by_role("button", name="Create API key").click()

    expect(page.get_by_text("Save your API key immediately")).to_be_visible()
    key = page.get_by_label("API key").input_value()
    stored = ApiKey.objects.get()
    assert key.startswith(stored.prefix + "_") and stored.scopes == ["read", "events"]
    check(page, f"71-api-key-created{suffix}")
    page.reload()  # shown once: a reload does not show it again
    expect(page.get_by_text("This API key was shown once and is not shown again.")).to_be_visible()
    assert key not in page.content()

    answer = requests.get(f"{site.url}/api/v1/subscriptions", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 200 and answer.json()[0]["url"] == subscription.url
    page.goto(site.url + "/administration/api-keys/")
    row = page.get_by_role("row").filter(has_text="ERP sync")
    expect(row).to_contain_text(f"{stored.prefix}…")
    expect(row).to_contain_text("read, events")
    expect(row).not_to_contain_text("Never")  # used just now, and it expires in 90 days
    assert key not in page.content()
    check(page, f"72-api-keys-list{suffix}")

    row.get_by_role("link", name="Revoke ERP sync").click()
    expect(page.get_by_text("Every request made with this key is refused from now on (401).")).to_be_visible()
    check(page, f"73-api-key-revoke{suffix}")
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Revoked ERP sync")).to_be_visible()
    refused = requests.get(f"{site.url}/api/v1/subscriptions", headers={"Authorization": f"Bearer {key}"},
                           timeout=10)
    assert refused.status_code == 401


def test_a_member_has_no_api_keys_link_and_the_page_is_refused(site, subscription, open_page, bob):
    page = open_page({"width": 1366, "height": 900}, user=bob)
    page.goto(site.url + "/administration/webhooks/")
    page.locator("summary", has_text="Administration").click()
    expect(page.get_by_role("link", name="Webhooks")).to_be_visible()
    expect(page.get_by_role("link", name="API keys")).to_have_count(0)
    expect(page.get_by_role("link", name="API reference")).to_be_visible()
    response = page.goto(site.url + "/administration/api-keys/")
    assert response.status == 403


def test_the_api_reference_opens_from_the_webhooks_page_and_renders_under_our_csp(site, subscription, open_page):
    page = open_page({"width": 1366, "height": 900})
    page.goto(site.url + "/administration/webhooks/")
    page.get_by_role("link", name="API reference").click()
    expect(page.get_by_text("Organisation webhooks API").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/events/batch")).to_be_visible()
    assert page.errors == []  # no script or style refused by the Content-Security-Policy
    page.screenshot(path=str(SCREENSHOTS / "74-api-reference.png"))
