"""The web side's protections: the deploy check, CSP, secure cookies, HSTS,
clickjacking, CSRF and login throttling, as a browser or an operator sees them."""

import os
import secrets
import subprocess
import sys

import pytest
from django.test import Client

from conftest import ROOT

pytestmark = pytest.mark.django_db

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "webhooks.example.com",
}


@pytest.fixture
def production_web(settings):
    """Production's web settings (DEBUG is off in the test run), static files without a built manifest."""
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    return settings


def deploy_check(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "WEBHOOKS_ALLOW_PRIVATE_NETWORKS")}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True,
    )


def test_the_deploy_check_is_clean_with_production_settings():
    result = deploy_check(**PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("bad_input", "change", "warning"),
    [
        ("DEBUG left on", {"DEBUG": "true"}, "security.W018"),
        ("short SECRET_KEY", {"SECRET_KEY": "short-key"}, "security.W009"),
        ("HSTS switched off", {"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ("no HTTPS redirect", {"SECURE_SSL_REDIRECT": "false"}, "security.W008"),
        ("SSRF guard lifted", {"WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true"}, "delivery.W001"),
    ],
)
def test_the_deploy_check_fails_on_an_unsafe_setting(bad_input, change, warning):
    """Control: the same command really fails when production settings are weakened."""
    result = deploy_check(**{**PRODUCTION, **change})
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    # Bad input: DEBUG off and no SECRET_KEY.
    result = deploy_check(DEBUG="false", ALLOWED_HOSTS="webhooks.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_pages_carry_a_csp_without_unsafe_inline_and_refuse_framing(web_settings, client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"].startswith("'self'")
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_outside_debug_http_is_redirected_to_https_and_https_answers_carry_hsts(production_web, client):
    plain = client.get("/accounts/login/")
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://testserver/accounts/login/"
    secure = client.get("/accounts/login/", secure=True)
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_outside_debug_the_session_and_csrf_cookies_are_secure_and_httponly(production_web, alice):
    client = Client()
    page = client.get("/accounts/login/", secure=True)
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Lax"
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct horse battery",
                                                "csrfmiddlewaretoken": csrf.value}, secure=True)
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"


def test_a_login_post_without_the_csrf_token_is_refused(web_settings, alice):
    # Bad input: a cross-site form post with no CSRF token.
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 403
    assert "sessionid" not in response.cookies


def test_repeated_wrong_passwords_lock_the_login_even_for_the_right_one(web_settings, alice):
    # Bad input: password guessing, AXES_FAILURE_LIMIT wrong passwords in a row.
    web_settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        wrong = client.post("/accounts/login/", {"username": "alice", "password": "guess"})
        assert "sessionid" not in wrong.cookies
    locked = client.post("/accounts/login/", {"username": "alice", "password": "correct horse battery"})
    assert locked.status_code == 429
    assert "sessionid" not in locked.cookies


def test_the_right_password_before_the_limit_still_logs_in(web_settings, alice):
    """Control for the lockout test: two misses are not yet a lockout."""
    web_settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(2):
        client.post("/accounts/login/", {"username": "alice", "password": "guess"})
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 302
    assert "sessionid" in response.cookies
