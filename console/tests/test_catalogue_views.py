"""Administration > Webhooks > Event catalogue: any member sees every type, its schema and its sample."""

import html
import json
import re

import pytest
from django.urls import reverse

from conftest import make_user
from subscriptions.activity_types import ACTIVITY_TYPES, CATEGORIES

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("web_settings")]
URL = "/administration/webhooks/events/"


def test_route_is_named_events():
    assert reverse("console:event_catalogue") == URL


def test_a_member_sees_all_25_types_with_category_schema_and_sample(client, bob):
    client.force_login(bob)
    response = client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Event catalogue</h1>" in page
    for category in CATEGORIES:
        assert f">{html.escape(category)}</h2>" in page
    articles = re.findall(r'<article class="panel catalogue-type" id="([a-z_-]+)".*?</article>', page, re.DOTALL)
    assert len(articles) == 25
    for code, activity_type in ACTIVITY_TYPES.items():
        heading = rf"<h3 [^>]*>{re.escape(activity_type.label)} <code>{re.escape(code)}</code></h3>"
        article = re.search(rf"<article [^>]*>\s*{heading}.*?</article>", page, re.DOTALL)
        assert article, code
        text = article.group(0)
        assert f"<dt>Category</dt><dd>{html.escape(activity_type.category)}</dd>" in text
        assert f"<dt>When it fires</dt><dd>{html.escape(activity_type.description)}</dd>" in text
        schema_html, sample_html = re.findall(r"<pre><code>(.*?)</code></pre>", text, re.DOTALL)
        assert json.loads(html.unescape(schema_html)) == activity_type.schema
        sample = json.loads(html.unescape(sample_html))
        assert (sample["type"], sample["data"]) == (code, activity_type.sample)


def test_page_has_no_inline_scripts_or_style_attributes(client, bob):
    client.force_login(bob)
    page = client.get(URL).content.decode()
    assert not re.search(r"<script(?![^>]*\ssrc=)", page)
    assert " style=" not in page and "<style" not in page


def test_anonymous_visitor_is_sent_to_log_in(client, db):
    """Bad input: no session."""
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={URL}"


def test_a_user_outside_any_organisation_gets_404(client, org):
    """Bad input: a signed-in user with no membership."""
    client.force_login(make_user("loner"))
    assert client.get(URL).status_code == 404
