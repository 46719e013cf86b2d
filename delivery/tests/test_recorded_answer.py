"""Any bytes a receiver sends become text and headers every store accepts, readable and reversible."""

import itertools
import re

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_subscription
from delivery.models import Attempt, Delivery
from delivery.recorded_answer import (
    DROPPED_HEADERS_KEY,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    body_for_storage,
    headers_for_storage,
)
from subscriptions.activity import record_activity


def unescaped(text: str) -> bytes:
    """Return the bytes escaped text stands for (the inverse of body_for_storage's escaping)."""
    out = bytearray()
    for piece in re.split(r"(\\\\|\\x[0-9a-f]{2})", text):
        if piece == "\\\\":
            out += b"\\"
        elif re.fullmatch(r"\\x[0-9a-f]{2}", piece):
            out.append(int(piece[2:], 16))
        else:
            out += piece.encode("utf-8")
    return bytes(out)


# --- bodies -------------------------------------------------------------------------

def test_clean_utf8_is_stored_as_it_came():
    """Control: JSON, accents, emoji, tabs and newlines are text."""
    raw = '{"ok": true, "note": "café 🌱\\\\n"}\r\n\tend'.encode()
    assert body_for_storage(raw=raw) == (raw.decode(), False)


def test_a_nul_byte_is_escaped():
    # Bad input: NUL inside otherwise clean JSON (PostgreSQL text refuses it).
    assert body_for_storage(raw=b'{"a":"x\x00y"}') == ('{"a":"x\\x00y"}', True)


def test_bytes_that_are_not_utf8_are_escaped_and_the_rest_stays_readable():
    # Bad input: latin-1 bytes and a stray continuation byte among UTF-8 text.
    assert body_for_storage(raw="é ok ".encode() + b"caf\xe9 \x80") == ("é ok caf\\xe9 \\x80", True)


def test_control_characters_other_than_tab_cr_lf_are_escaped():
    # Bad input: ESC and BEL (terminal escape codes) in a body.
    assert body_for_storage(raw=b"\x1b[31mred\x07\t\r\n") == ("\\x1b[31mred\\x07\t\r\n", True)


def test_backslashes_are_doubled_only_in_escaped_text():
    # Bad input: a literal "\x00" (four characters) next to a real NUL: both must read back apart.
    text, escaped = body_for_storage(raw=b"\\x00 \x00")
    assert (text, escaped) == ("\\\\x00 \\x00", True)
    assert unescaped(text) == b"\\x00 \x00"
    assert body_for_storage(raw=b'{"path":"C:\\\\dir"}') == ('{"path":"C:\\\\dir"}', False)  # clean: as it came


def test_a_character_cut_by_the_size_cap_does_not_make_the_body_binary():
    # Bad input: the cap cut "é" (2 bytes) in half at the very end.
    assert body_for_storage(raw=b"abc\xc3", truncated=True) == ("abc", False)
    assert body_for_storage(raw=b"abc\xc3", truncated=False) == ("abc\\xc3", True)  # not cut: a bad byte


def test_a_body_of_gzip_zeros_is_escaped_zeros():
    # Bad input: what a gzip bomb inflates to.
    text, escaped = body_for_storage(raw=bytes(1000))
    assert escaped and text == "\\x00" * 1000


@given(raw=st.binary(max_size=2000), truncated=st.booleans())
def test_any_bytes_become_text_without_nul_or_surrogates_that_reads_back(raw, truncated):
    text, escaped = body_for_storage(raw=raw, truncated=truncated)
    assert "\x00" not in text
    text.encode("utf-8")  # strict: no lone surrogate reaches the store
    back = unescaped(text) if escaped else text.encode("utf-8")
    assert raw.startswith(back) and len(raw) - len(back) <= (3 if truncated else 0)


# --- headers ------------------------------------------------------------------------

def test_clean_headers_are_stored_as_they_came():
    assert headers_for_storage(headers={"Content-Type": "application/json", "X-Trace": "abc-123"}) == {
        "Content-Type": "application/json", "X-Trace": "abc-123"}


def test_nul_and_non_utf8_in_header_names_and_values_are_escaped():
    # Bad input: NUL and a lone 0xff in a value, as http.client hands them over (latin-1 text), and as bytes.
    headers = [("X-Nul", "a\x00b"), ("X-Latin", "caf\xe9"), ("X-Utf8", "caf\xc3\xa9"), (b"X-\xffName", b"v\x00")]
    assert headers_for_storage(headers=headers) == {
        "X-Nul": "a\\x00b", "X-Latin": "caf\\xe9", "X-Utf8": "café", "X-\\xffName": "v\\x00"}


def test_repeated_headers_are_joined_as_http_allows():
    assert headers_for_storage(headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]) == {"Set-Cookie": "a=1, b=2"}


def test_thousands_of_headers_keep_the_first_hundred_and_say_how_many_were_dropped():
    # Bad input: 5,000 distinct headers.
    stored = headers_for_storage(headers=[(f"X-H{n}", "v") for n in range(5000)])
    assert len(stored) == MAX_HEADERS + 1
    assert stored["X-H0"] == "v" and f"X-H{MAX_HEADERS - 1}" in stored and f"X-H{MAX_HEADERS}" not in stored
    assert stored[DROPPED_HEADERS_KEY] == f"4,900 more headers were not recorded (at most {MAX_HEADERS} are kept)."


def test_a_very_long_header_value_is_capped_without_cutting_an_escape():
    # Bad input: a 1 MB header value, then one of NULs that ends exactly across the cap.
    assert headers_for_storage(headers={"X-Long": "v" * 1_000_000})["X-Long"] == "v" * MAX_HEADER_VALUE
    value = headers_for_storage(headers={"X-Nuls": "ab" + "\x00" * 1000})["X-Nuls"]
    assert value == "ab" + "\\x00" * ((MAX_HEADER_VALUE - 2) // 4)


# --- on the store -------------------------------------------------------------------

@pytest.fixture
def delivery(org):
    make_subscription(org)
    event = record_activity(organisation=org, activity_type="lot.created", data={"lot_id": "LOT-1"})
    return Delivery.objects.get(event=event)


raw_headers = st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.binary(max_size=200)), max_size=150)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=4000), headers=raw_headers, as_text=st.booleans())
def test_any_answer_round_trips_through_an_attempt_saved_on_this_store(delivery, raw, headers, as_text):
    # Bad input: arbitrary bytes as body, header names and values (as bytes, or as http.client's latin-1 text).
    if as_text:
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
    body, escaped = body_for_storage(raw=raw)
    stored_headers = headers_for_storage(headers=headers)
    number = next(_numbers)
    Attempt.objects.create(
        delivery=delivery, number=number, url="https://hooks.example.com/in", started_at=timezone.now(),
        duration_ms=1, status_code=200, response_headers=stored_headers, response_body=body,
        response_body_escaped=escaped,
    )
    saved = Attempt.objects.get(delivery=delivery, number=number)
    assert "\x00" not in saved.response_body
    assert (saved.response_body, saved.response_body_escaped) == (body, escaped)
    assert saved.response_headers == stored_headers
    assert all("\x00" not in k + v for k, v in saved.response_headers.items())


_numbers = itertools.count(1)
