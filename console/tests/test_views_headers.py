"""Custom headers in the pages: rows on the edit form (Save), masked secrets, errors at the field and in the summary."""

import pytest
from django.urls import reverse

from conftest import make_subscription, send_now
from delivery.models import Delivery
from subscriptions.activity import record_activity
from subscriptions.custom_headers import MASK, headers_for_sending
from subscriptions.models import Subscription, TrailEntry
from subscriptions.services import subscription_set_headers
from subscriptions.signing_secrets import encrypt_secret

pytestmark = pytest.mark.usefixtures("web_settings")

API_KEY = "sk_live_0123456789abcdef"


def action(name, subscription):
    return reverse(f"console:subscription_{name}", args=[subscription.id])


def edit_data(subscription, *rows, **fields):
    """The edit form as a browser posts it: the current fields, then each row (name, value, secret)."""
    data = {"url": subscription.url, "activity_types": ["lot.created", "harvest.recorded"],
            "description": subscription.description, **fields}
    for i, (name, value, secret) in enumerate(rows):
        data |= {f"header_name_{i}": name, f"header_value_{i}": value}
        if secret:
            data[f"header_secret_{i}"] = "on"
    return data


@pytest.fixture
def with_headers(subscription):
    subscription_set_headers(subscription=subscription, headers=[
        {"name": "X-Tenant", "value": "acme-north", "secret": False},
        {"name": "X-Api-Key", "value": API_KEY, "secret": True}])
    return Subscription.objects.get(id=subscription.id)


def test_the_edit_form_shows_the_headers_with_secret_values_masked_and_one_empty_row(admin_client, with_headers):
    page = admin_client.get(action("edit", with_headers)).content.decode()
    assert 'name="header_name_0" value="X-Tenant"' in page and 'name="header_value_0" value="acme-north"' in page
    assert 'name="header_name_1" value="X-Api-Key"' in page and f'name="header_value_1" value="{MASK}"' in page
    assert 'name="header_secret_1" id="id_header_secret_1" checked' in page
    assert 'name="header_name_2"' in page and 'name="header_name_3"' not in page  # one empty row
    assert 'name="add_header" value="1"' in page
    assert API_KEY not in page


def test_save_stores_the_rows_encrypts_the_secret_and_ignores_empty_rows(admin_client, alice, subscription):
    response = admin_client.post(action("edit", subscription), edit_data(
        subscription, ("X-Tenant", "acme-north", False), ("", "", False), ("X-Api-Key", API_KEY, True)))

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert [h["name"] for h in subscription.custom_headers] == ["X-Tenant", "X-Api-Key"]
    assert API_KEY not in str(subscription.custom_headers)  # encrypted at rest
    assert headers_for_sending(stored=subscription.custom_headers) == {"X-Tenant": "acme-north", "X-Api-Key": API_KEY}
    assert TrailEntry.objects.filter(subscription=subscription, actor=alice,
                                     detail="custom headers: X-Tenant, X-Api-Key").exists()
    detail = admin_client.get(action("detail", subscription)).content.decode()
    assert "<code>X-Tenant: acme-north</code>" in detail and f"<code>X-Api-Key: {MASK}</code>" in detail
    assert API_KEY not in detail


def test_saving_the_mask_keeps_the_secret_and_records_no_header_change(admin_client, with_headers):
    before = with_headers.custom_headers
    admin_client.post(action("edit", with_headers), edit_data(
        with_headers, ("X-Tenant", "acme-north", False), ("X-Api-Key", MASK, True), description="new"))

    with_headers.refresh_from_db()
    assert with_headers.description == "new" and with_headers.custom_headers == before
    assert not TrailEntry.objects.filter(subscription=with_headers, detail__startswith="custom headers").exclude(
        actor=None).exists()


def test_emptying_a_row_removes_the_header(admin_client, with_headers):
    admin_client.post(action("edit", with_headers), edit_data(with_headers, ("", "", False), ("X-Api-Key", MASK, True)))
    with_headers.refresh_from_db()
    assert [h["name"] for h in with_headers.custom_headers] == ["X-Api-Key"]


@pytest.mark.parametrize(("row", "field", "message"), [
    (("Host", "evil.example", False), "header_name_0", "Host is set by the sender or by HTTP itself"),
    (("Content-Type", "text/plain", False), "header_name_0", "Content-Type is set by the sender"),
    (("webhook-id", "x", False), "header_name_0", "webhook-id is set by the sender"),
    (("Bad Name", "x", False), "header_name_0", "is not a valid header name"),
    (("X-Empty", "", False), "header_value_0", "X-Empty needs a value."),
    (("", "orphan value", False), "header_name_0", "A custom header needs a name."),
    (("X-Line", "a\r\nX-Injected: 1", False), "header_value_0", "The value of X-Line may only hold visible ASCII"),
    (("X-Key", "TOPSECRET-k\u20acy-42", True), "header_value_0", "The value of X-Key may only hold visible ASCII"),
    (("X-Nel", "a\u0085", False), "header_value_0", "character 2 is U+0085"),  # not stripped away silently
    (("X-New", MASK, True), "header_value_0", "Type the value of X-New again"),
])
def test_a_bad_row_is_an_error_at_its_field_and_in_the_summary_and_nothing_is_saved(
        admin_client, subscription, row, field, message):
    response = admin_client.post(action("edit", subscription), edit_data(
        subscription, row, url="https://changed.example.com/in"))  # bad input in the row

    assert response.status_code == 200
    page = response.content.decode()
    assert f'<li><a href="#id_{field}">' in page and message in page
    assert f'name="{field}"' in page and 'aria-describedby="header-0-error"' in page
    assert '<li class="headers__row field--error">' in page
    subscription.refresh_from_db()
    assert subscription.url == "https://hooks.example.com/in" and subscription.custom_headers == []


def test_a_name_given_twice_and_a_secret_made_visible_are_refused(admin_client, with_headers):
    page = admin_client.post(action("edit", with_headers), edit_data(
        with_headers, ("X-Tenant", "a", False), ("x-tenant", "b", False),
        ("X-Api-Key", MASK, False))).content.decode()  # bad input: a duplicate, and the mask made plain text
    assert 'href="#id_header_name_1"' in page and "x-tenant is given twice." in page
    assert 'href="#id_header_value_2"' in page and "Type the value of X-Api-Key again" in page
    with_headers.refresh_from_db()
    assert headers_for_sending(stored=with_headers.custom_headers)["X-Api-Key"] == API_KEY


def test_a_member_sees_the_headers_masked_and_cannot_edit(client, bob, with_headers):
    client.force_login(bob)
    detail = client.get(action("detail", with_headers)).content.decode()
    assert f"X-Api-Key: {MASK}" in detail and API_KEY not in detail
    assert client.post(action("edit", with_headers), edit_data(with_headers, ("X-A", "b", False))).status_code == 403


def test_headers_saved_on_the_page_are_sent_and_the_attempt_shows_the_secret_masked(client, alice, org, receiver):
    subscription, _ = make_subscription(org, url=receiver.url, activity_types=["lot.created", "harvest.recorded"])
    client.force_login(alice)
    client.post(action("edit", subscription), edit_data(
        subscription, ("X-Tenant", "acme-north", False), ("X-Api-Key", API_KEY, True)))

    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "H"})
    attempt = send_now(Delivery.objects.get(event=event).id)

    (request,) = receiver.received
    assert request.headers["x-tenant"] == "acme-north" and request.headers["x-api-key"] == API_KEY
    assert attempt.request_headers["X-Api-Key"] == MASK
    page = client.get(reverse("console:delivery_detail", args=[subscription.id, attempt.delivery_id]))
    page = page.content.decode()
    assert API_KEY not in page and MASK in page


def test_a_tampered_form_with_more_rows_than_allowed_is_an_error_and_nothing_is_saved(admin_client, with_headers):
    # Bad input: 15 filled rows, where the page shows at most 10 (it used to store the first 10 silently).
    before = with_headers.custom_headers
    rows = [(f"X-H{n}", f"v{n}", False) for n in range(15)]

    response = admin_client.post(action("edit", with_headers), edit_data(with_headers, *rows, description="new"))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="error-summary"' in page
    assert "At most 10 custom headers: 15 were sent. Nothing was saved; remove the extra ones." in page
    with_headers.refresh_from_db()
    assert with_headers.custom_headers == before and with_headers.description == ""


def test_rows_with_unexpected_numbers_count_too(admin_client, subscription):
    # Bad input: 11 rows numbered far apart, so that no row of the form's own numbers holds them.
    data = edit_data(subscription)
    data |= {f"header_name_{n * 100}": f"X-H{n}" for n in range(11)}

    page = admin_client.post(action("edit", subscription), data).content.decode()

    assert "At most 10 custom headers: 11 were sent." in page
    subscription.refresh_from_db()
    assert subscription.custom_headers == []


def test_a_stored_secret_value_that_cannot_be_sent_asks_to_be_typed_again(admin_client, subscription):
    # Bad input: a secret value saved before values were limited to visible ASCII.
    Subscription.objects.filter(id=subscription.id).update(custom_headers=[
        {"name": "X-Api-Key", "value": encrypt_secret("TOPSECRET-k\u20acy-42"), "secret": True}])

    response = admin_client.post(action("edit", subscription), edit_data(
        subscription, ("X-Api-Key", MASK, True), description="kept as is"))

    page = response.content.decode()
    assert response.status_code == 200 and 'href="#id_header_value_0"' in page
    assert "Type the value of X-Api-Key again: the stored one cannot be sent" in page
    assert "TOPSECRET" not in page and "\u20ac" not in page
    response = admin_client.post(action("edit", subscription), edit_data(
        subscription, ("X-Api-Key", "TOPSECRET-key-42", True)))
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert headers_for_sending(stored=subscription.custom_headers) == {"X-Api-Key": "TOPSECRET-key-42"}


def test_add_header_brings_the_form_back_as_typed_with_one_more_row_and_saves_nothing(admin_client, with_headers):
    data = edit_data(with_headers, ("X-Tenant", "acme-south", False), ("X-Api-Key", MASK, True),
                     ("X-Region", "", False), add_header="1")
    page = admin_client.post(action("edit", with_headers), data).content.decode()
    assert 'name="header_value_0" value="acme-south"' in page and 'name="header_name_2" value="X-Region"' in page
    assert 'name="header_name_3"' in page and 'name="header_name_4"' not in page
    assert 'name="header_secret_1" id="id_header_secret_1" checked' in page
    assert 'name="header_secret_0" id="id_header_secret_0" checked' not in page
    assert "There is a problem" not in page and "There are problems" not in page  # nothing was submitted
    assert Subscription.objects.get(id=with_headers.id).custom_headers == with_headers.custom_headers


def test_create_takes_custom_headers_too(admin_client, org):
    """Bad input first: a header value with a line break, refused at its field; then the good one."""
    form = admin_client.get(reverse("console:subscription_create")).content.decode()
    assert 'name="header_name_0"' in form and 'name="header_name_1"' not in form and "Add header" in form
    data = {"url": "https://erp.example.com/in", "activity_types": ["lot.created"], "description": "",
            "header_name_0": "X-Api-Key", "header_value_0": "abc\ndef", "header_secret_0": "on"}
    page = admin_client.post(reverse("console:subscription_create"), data).content.decode()
    assert 'aria-describedby="header-0-error"' in page and not Subscription.objects.exists()
    more = admin_client.post(reverse("console:subscription_create"), {**data, "add_header": "1"}).content.decode()
    assert 'name="header_name_1"' in more and 'name="header_name_0" value="X-Api-Key"' in more
    response = admin_client.post(reverse("console:subscription_create"), {
        **data, "header_value_0": API_KEY, "header_name_1": "X-Tenant", "header_value_1": "acme"})
    created = Subscription.objects.get()
    assert response["Location"] == reverse("console:subscription_secret", args=[created.id])
    assert headers_for_sending(stored=created.custom_headers) == {"X-Api-Key": API_KEY, "X-Tenant": "acme"}
    assert created.custom_headers[0]["secret"] and API_KEY not in str(created.custom_headers)
