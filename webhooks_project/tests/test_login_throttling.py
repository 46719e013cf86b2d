"""Login throttling per address across usernames (password spraying), on our login and the admin's."""

import pytest
from django.test import Client

from conftest import make_user

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed logins from your network address or for this username"
SPRAYER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"


@pytest.fixture
def limit_three(web_settings):
    web_settings.AXES_FAILURE_LIMIT = 3
    return web_settings


def login(path: str, username: str, password: str, address: str):
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


def spray(path: str, usernames, address: str = SPRAYER) -> None:
    """Try one wrong password on each username from one address (the try that reaches the limit gets a 429)."""
    for username in usernames:
        response = login(path, username, "Summer2026!", address)
        assert response.status_code in (200, 429) and "sessionid" not in response.cookies


def test_one_password_sprayed_over_many_usernames_locks_the_address(limit_three, alice):
    # Bad input: password spraying, one wrong try each on three usernames from one address.
    spray("/accounts/login/", ["carol", "dave", "erin"])

    locked = login("/accounts/login/", "alice", "correct horse battery", SPRAYER)
    assert locked.status_code == 429
    assert "sessionid" not in locked.cookies
    page = locked.content.decode()
    assert LOCKED in page and "logging in is locked for 15 minutes" in page and "<h1>Log in</h1>" in page


def test_the_lock_is_per_address_and_another_address_still_logs_in(limit_three, alice):
    """Control for the spraying lock: the same usernames from another address are not locked."""
    spray("/accounts/login/", ["carol", "dave", "erin"])
    response = login("/accounts/login/", "alice", "correct horse battery", ELSEWHERE)
    assert response.status_code == 302 and "sessionid" in response.cookies


def test_two_failures_over_usernames_are_not_yet_a_lock(limit_three, alice):
    """Control: below the limit, the right password from the spraying address logs in."""
    spray("/accounts/login/", ["carol", "dave"])
    response = login("/accounts/login/", "alice", "correct horse battery", SPRAYER)
    assert response.status_code == 302


def test_a_login_to_the_sprayers_own_account_does_not_reset_the_address(limit_three, alice, mallory):
    # Bad input: spraying, with a success on an account the attacker owns between rounds.
    spray("/accounts/login/", ["carol", "dave"])
    assert login("/accounts/login/", "mallory", "correct horse battery", SPRAYER).status_code == 302
    spray("/accounts/login/", ["erin"])
    assert login("/accounts/login/", "alice", "correct horse battery", SPRAYER).status_code == 429


def test_the_admin_login_is_locked_the_same_way(limit_three, superuser):
    # Bad input: spraying the Django admin's login form.
    spray("/django-admin/login/", ["admin", "administrator", "root2"])

    locked = login("/django-admin/login/", "root", "root-password-123", SPRAYER)
    assert locked.status_code == 429 and LOCKED in locked.content.decode()
    assert "sessionid" not in locked.cookies
    # Failures on either form count for both: the address is locked on /accounts/login/ too.
    assert login("/accounts/login/", "root", "root-password-123", SPRAYER).status_code == 429


def test_the_admin_login_still_works_from_another_address(limit_three, superuser):
    """Control for the admin lock."""
    spray("/django-admin/login/", ["admin", "administrator", "root2"])
    response = login("/django-admin/login/", "root", "root-password-123", ELSEWHERE)
    assert response.status_code == 302 and "sessionid" in response.cookies


def test_guessing_one_username_from_many_addresses_still_locks_that_pair_only(limit_three):
    """The username+address lock is unchanged: three misses on bob from one address lock that pair."""
    make_user("bob")
    spray("/accounts/login/", ["bob", "bob", "bob"])
    assert login("/accounts/login/", "bob", "correct horse battery", SPRAYER).status_code == 429
    assert login("/accounts/login/", "bob", "correct horse battery", ELSEWHERE).status_code == 302


# --- behind a reverse proxy ---------------------------------------------------------------

PROXY = "10.0.0.5"


def login_via_proxy(username: str, password: str, forwarded_for: str):
    """POST the login form as a proxy at PROXY would pass it on: REMOTE_ADDR is the proxy's."""
    client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_behind_a_trusted_proxy_a_sprayer_does_not_lock_out_everyone_else(limit_three, alice):
    # Bad input: spraying through the proxy every user shares.
    limit_three.TRUSTED_PROXIES = 1
    for username in ["carol", "dave", "erin"]:
        login_via_proxy(username, "Summer2026!", SPRAYER)
    assert login_via_proxy("alice", "correct horse battery", SPRAYER).status_code == 429
    assert login_via_proxy("alice", "correct horse battery", ELSEWHERE).status_code == 302


def test_a_forged_forwarded_for_does_not_escape_the_lock(limit_three, alice):
    # Bad input: the sprayer writes a new X-Forwarded-For each time; the proxy appends the real address.
    limit_three.TRUSTED_PROXIES = 1
    for n, username in enumerate(["carol", "dave", "erin"]):
        login_via_proxy(username, "Summer2026!", f"192.0.2.{n}, {SPRAYER}")
    assert login_via_proxy("alice", "correct horse battery", f"192.0.2.99, {SPRAYER}").status_code == 429


def test_without_trusted_proxies_forwarded_for_is_ignored(limit_three, alice):
    # Bad input: a client connecting directly forges X-Forwarded-For to look like many addresses.
    for n, username in enumerate(["carol", "dave", "erin"]):
        Client(REMOTE_ADDR=SPRAYER, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").post(
            "/accounts/login/", {"username": username, "password": "Summer2026!"})
    response = Client(REMOTE_ADDR=SPRAYER, HTTP_X_FORWARDED_FOR=ELSEWHERE).post(
        "/accounts/login/", {"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 429


@pytest.mark.parametrize("path", ["/accounts/login/", "/django-admin/login/"])
def test_a_username_longer_than_any_account_is_a_form_error_not_a_500(web_settings, path):
    # Bad input: a 70,000-character username (django-axes used to store it in a 255-character column: a 500).
    response = login(path, "u" * 70_000, "Summer2026!", SPRAYER)

    assert response.status_code == 200
    assert "Ensure this value has at most 150 characters (it has 70000)." in response.content.decode()
    assert "sessionid" not in response.cookies
