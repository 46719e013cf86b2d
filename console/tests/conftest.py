"""Fixtures of the Webhooks pages' tests: acme's webhook, its admin signed in, Chromium (the live site: conftest)."""

import pytest
from django.test import Client
from playwright.sync_api import sync_playwright

from conftest import make_subscription

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 30_000


@pytest.fixture
def subscription(org, alice):
    """alice's webhook to https://hooks.example.com/in for lot.created and harvest.recorded."""
    subscription, _ = make_subscription(org, activity_types=["lot.created", "harvest.recorded"], created_by=alice)
    return subscription


@pytest.fixture
def admin_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def sign_in(context, site, user):
    client = Client()
    client.force_login(user)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site.url}])


@pytest.fixture
def open_page(browser, site, alice):
    """Return open_page(viewport, user=alice, **context options): a signed-in page that records console errors."""
    contexts = []

    def make(viewport, user=alice, **options):
        context = browser.new_context(viewport=viewport, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        sign_in(context, site, user)
        page = context.new_page()
        page.errors = []
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        return page

    yield make
    for context in contexts:
        context.close()
