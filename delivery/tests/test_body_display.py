"""The delivery page shows any stored body, event data or headers within bounded size, never a 5xx."""

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_subscription
from delivery.body_display import (
    ESCAPED_NOTE,
    MAX_HEADERS_SHOWN,
    PRETTY_MAX_CHARS,
    PRETTY_MAX_DEPTH,
    RAW_MAX_CHARS,
    body_shown,
    json_depth,
)
from delivery.models import Attempt, Delivery, Event
from delivery.recorded_answer import body_for_storage, headers_for_storage
from subscriptions.activity import record_activity

pytestmark = pytest.mark.usefixtures("web_settings")

# One attempt's page: the page around it, two bodies and two header tables, each bounded,
# with room for HTML escaping (a quote becomes 6 characters).
PAGE_LIMIT = 1024 * 1024


def brackets(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- the display functions ---------------------------------------------------------------

def test_shallow_json_is_pretty_printed():
    """Control: what the page did before, for ordinary bodies."""
    assert body_shown(text='{"error":"boom","n":[1]}').text == '{\n  "error": "boom",\n  "n": [\n    1\n  ]\n}'
    assert body_shown(text='{"error":"boom"}').notes == ()


def test_json_deeper_than_the_limit_is_shown_raw_with_a_note():
    # Bad input: brackets one level deeper than the pretty-printer follows.
    shown = body_shown(text=brackets(PRETTY_MAX_DEPTH + 1))
    assert shown.text == brackets(PRETTY_MAX_DEPTH + 1)
    assert shown.notes == (f"Nested {PRETTY_MAX_DEPTH + 1} levels deep (more than {PRETTY_MAX_DEPTH}): "
                           "shown as received.",)


def test_brackets_inside_strings_do_not_count_as_depth():
    # Bad input: a string full of brackets and escaped quotes, which is not nesting at all.
    text = json.dumps({"s": '\\"[[[[' * 1000})
    assert json_depth(text=text) == 1
    assert body_shown(text=text).text == json.dumps(json.loads(text), indent=2)


@pytest.mark.timeout(10)  # linear: milliseconds; the quadratic scan it replaced took about 30 s here
@pytest.mark.parametrize("text", ['"' + '\\"' * 64_000, '"\\' * 64_000, '["' * 64_000],
                         ids=["escaped-quotes", "trailing-backslash", "unclosed-strings"])
def test_a_body_of_unterminated_strings_is_measured_in_linear_time(text):
    # Bad input: 128 KB where every quote starts a string that never closes.
    assert body_shown(text=text).text == text[:RAW_MAX_CHARS]


def test_a_body_whose_pretty_text_would_be_too_long_is_shown_raw():
    # Bad input: 6 KB at depth 61 (within the depth limit), whose indentation would run to 280 KB.
    value = 1
    for _ in range(59):
        value = [value, 1]
    text = json.dumps([value] * 25, separators=(",", ":"))
    assert len(text) < 6_000 and len(json.dumps(json.loads(text), indent=2)) > PRETTY_MAX_CHARS
    shown = body_shown(text=text)
    assert shown.text == text
    assert shown.notes == (f"Too long to pretty-print (over {PRETTY_MAX_CHARS:,} characters): shown as received.",)


def test_raw_text_is_capped_with_a_note():
    # Bad input: 300 KB of text that is not JSON.
    shown = body_shown(text="x" * 300_000)
    assert shown.text == "x" * RAW_MAX_CHARS
    assert shown.notes == (f"Showing the first {RAW_MAX_CHARS:,} of 300,000 characters.",)


def test_an_escaped_body_is_shown_as_stored_with_its_note():
    # Bad input: a body that was stored with \xNN escapes (it had a NUL).
    text, escaped = body_for_storage(raw=b'{"a":"\x00"}')
    shown = body_shown(text=text, escaped=escaped)
    assert shown.text == '{"a":"\\x00"}'
    assert shown.notes == (ESCAPED_NOTE,) == ("Not UTF-8 text: shown with \\xNN escapes.",)


# --- the page --------------------------------------------------------------------------------

@pytest.fixture
def delivery(org):
    make_subscription(org, activity_types=["lot.created"])
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-1"})
    return Delivery.objects.get(event=event)


def add_attempt(delivery, number=1, **fields) -> Attempt:
    return Attempt.objects.create(delivery=delivery, number=number, url="https://hooks.example.com/in",
                                  started_at=timezone.now(), duration_ms=5, status_code=500, **fields)


def page_of(client, user, delivery) -> str:
    client.force_login(user)
    response = client.get(reverse("console:delivery_detail", args=[delivery.subscription_id, delivery.id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert len(page) < PAGE_LIMIT
    return page


def test_60_kb_of_nested_brackets_in_a_response_is_shown_raw(client, alice, delivery):
    # Bad input: a receiver answered 60 KB of "[" (once a RecursionError and a 500).
    add_attempt(delivery, response_body="[" * 60_000)
    page = page_of(client, alice, delivery)
    assert "Nested 60,000 levels deep" in page and "[" * 60_000 in page


def test_closed_brackets_nested_in_a_response_are_shown_raw(client, alice, delivery):
    # Bad input: 30,000 levels of valid, closed JSON arrays.
    add_attempt(delivery, response_body=brackets(30_000))
    page = page_of(client, alice, delivery)
    assert "Nested 30,000 levels deep" in page


def test_event_data_900_deep_stored_directly_is_shown_raw(client, alice, delivery):
    # Bad input: an event body nested 900 deep, written before record_activity refused it.
    body = '{"id":"evt_x","data":' + '{"a":' * 900 + "1" + "}" * 900 + "}"
    Event.objects.filter(id=delivery.event_id).update(body=body)
    page = page_of(client, alice, delivery)
    assert "Nested 901 levels deep" in page and "{&quot;a&quot;:{&quot;a&quot;:" in page


def test_a_deep_body_within_the_size_bound_does_not_blow_up_the_page(client, alice, delivery):
    # Bad input: 5.5 KB at depth 200, which once pretty-printed to a 1.6 MB page.
    value = 1
    for _ in range(200):
        value = [value, 1]
    add_attempt(delivery, response_body=json.dumps([value, "x" * 1500]))
    page_of(client, alice, delivery)


def test_an_escaped_body_with_nul_shows_its_escapes_and_note(client, alice, delivery):
    # Bad input: NUL and bytes that are not UTF-8 in a receiver's body, stored escaped.
    text, escaped = body_for_storage(raw=b"oops\x00\xff\xfe<script>")
    add_attempt(delivery, response_body=text, response_body_escaped=escaped)
    page = page_of(client, alice, delivery)
    assert "Not UTF-8 text: shown with \\xNN escapes." in page
    assert "oops\\x00\\xff\\xfe&lt;script&gt;" in page


def test_thousands_of_stored_headers_show_the_first_hundred(client, alice, delivery):
    # Bad input: 3,000 response headers stored directly (as older code did), with 5 KB values.
    add_attempt(delivery, response_headers={f"X-H{n}": "v" * 5000 for n in range(3000)})
    page = page_of(client, alice, delivery)
    assert "X-H0" in page and f"X-H{MAX_HEADERS_SHOWN - 1}<" in page and f"X-H{MAX_HEADERS_SHOWN}<" not in page
    assert f"{3000 - MAX_HEADERS_SHOWN} more headers not shown." in page


def test_headers_recorded_from_hostile_bytes_show_on_the_page(client, alice, delivery):
    # Bad input: NUL and a lone 0xff in header names and values, and 2,000 headers.
    headers = [(b"X-\x00", b"\xff\x00")] + [(f"X-H{n}".encode(), b"v") for n in range(2000)]
    add_attempt(delivery, response_headers=headers_for_storage(headers=headers))
    page = page_of(client, alice, delivery)
    assert "X-\\x00" in page and "\\xff\\x00" in page
    assert "1,901 more headers were not recorded" in page
