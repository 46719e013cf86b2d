"""Errors raised before a view answers are problem details under /api/ and the pages' HTML elsewhere."""

import json

import pytest
from django.test import Client

from api.tests.conftest import new_key

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("host", ["W)", "evil.example"])
def test_a_host_header_the_site_does_not_serve_gets_a_400_problem_on_the_api(org, alice, host):
    # Bad input: a malformed Host header ("W)", found by the schema's property test) and a well-formed one not
    # in ALLOWED_HOSTS; each with a valid key, so only the host is at fault.
    key = new_key(org, "read", user=alice)
    response = Client().get("/api/v1/subscriptions", HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["status"] == 400 and body["title"] == "Bad request" and "Host header" in body["detail"]


def test_a_host_header_the_site_does_not_serve_gets_the_html_400_page_on_the_console(client):
    response = client.get("/accounts/login/", HTTP_HOST="W)")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"Bad Request (400)" in response.content


def test_a_missing_api_url_is_a_404_problem_and_a_missing_page_the_html_404(client):
    api = client.get("/api/v2/nothing")
    assert api.status_code == 404 and api["Content-Type"] == "application/problem+json"
    assert json.loads(api.content)["detail"] == "No such API URL: see /api/v1/docs."
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
