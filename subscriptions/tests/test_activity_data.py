"""Activity data must be strict JSON text in Unicode, shallow enough to show: refused at the call otherwise."""

import json

import pytest

from conftest import make_subscription
from delivery.body_display import PRETTY_MAX_DEPTH
from delivery.models import Delivery, Event
from subscriptions.activity import record_activity
from subscriptions.activity_data import MAX_DEPTH, json_text_depth_check
from subscriptions.exceptions import ActivityError, InvalidActivityData

pytestmark = pytest.mark.django_db


def nested(levels: int, leaf=1) -> dict:
    """Return a dict holding `levels` containers in all (itself included), alternating objects and arrays."""
    value = leaf
    for level in range(levels - 1):
        value = [value] if level % 2 else {"a": value}
    return {"a": value}


def assert_refused(org, data, message: str) -> None:
    with pytest.raises(InvalidActivityData) as refused:
        record_activity(organisation=org, activity_type="lot.created", data=data)
    assert isinstance(refused.value, ActivityError)
    assert str(refused.value) == message
    assert Event.objects.count() == 0 and Delivery.objects.count() == 0


@pytest.fixture(autouse=True)
def _subscribed(org):
    make_subscription(org)


def test_a_lone_surrogate_in_a_value_is_refused_naming_its_path(org):
    # Bad input: "\ud800", a lone high surrogate (json.dumps would send it as "\\ud800").
    assert_refused(org, {"lots": [{"name": "ok"}, {"name": "bad \ud800 name"}]},
                   'Activity data has a lone surrogate (U+D800) in a string at data["lots"][1]["name"], '
                   "at character 4: not valid Unicode text.")


def test_a_lone_surrogate_in_a_key_is_refused(org):
    # Bad input: a low surrogate alone in an object key, one level down.
    assert_refused(org, {"lot": {"\udc80key": 1}},
                   'Activity data has a lone surrogate (U+DC80) in a key in data["lot"], at character 0: '
                   "not valid Unicode text.")


@pytest.mark.parametrize("raw", [b"\xff\xfe not utf-8", bytearray(b"abc")], ids=["bytes", "bytearray"])
def test_bytes_are_refused(org, raw):
    # Bad input: bytes (undecodable, or a bytearray) where text belongs.
    assert_refused(org, {"lot": {"label": raw}},
                   'Activity data has bytes at data["lot"]["label"]: decode them to text '
                   "(or base64-encode binary data) first.")


def test_nesting_deeper_than_the_limit_is_refused(org):
    # Bad input: MAX_DEPTH + 1 levels of objects and arrays.
    with pytest.raises(InvalidActivityData, match=rf"nested too deeply at data\[\"a\"\].*more than {MAX_DEPTH} levels"):
        record_activity(organisation=org, activity_type="lot.created", data=nested(MAX_DEPTH + 1))
    assert Event.objects.count() == 0


def test_nesting_900_deep_is_refused_without_recursion(org):
    # Bad input: data nested 900 deep (the delivery page once answered 500 for it).
    with pytest.raises(InvalidActivityData, match="nested too deeply"):
        record_activity(organisation=org, activity_type="lot.created", data=nested(900))
    assert Event.objects.count() == 0


def test_nesting_at_the_limit_is_recorded_and_the_page_can_pretty_print_it(org):
    """Control for the depth limit: exactly MAX_DEPTH levels are accepted, within what pages show pretty."""
    event = record_activity(organisation=org, activity_type="lot.created", data=nested(MAX_DEPTH))
    assert json.loads(event.body)["data"] == nested(MAX_DEPTH)
    assert MAX_DEPTH + 1 <= PRETTY_MAX_DEPTH  # the envelope around `data` is one more level


@pytest.mark.parametrize("key", [1, None, ("a", "b")], ids=["int", "None", "tuple"])
def test_a_key_that_is_not_a_string_is_refused(org, key):
    # Bad input: an int, None or tuple key (json.dumps would turn 1 into "1", or fail without a path).
    assert_refused(org, {"lot": {key: "x"}},
                   f'Activity data has a key {key!r} ({type(key).__name__}) in data["lot"]: '
                   "JSON object keys must be strings.")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")], ids=["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(org, number):
    # Bad input: a float JSON cannot express.
    assert_refused(org, {"weights": [1.5, number]},
                   f'Activity data has {number!r} at data["weights"][1], which is not JSON-serialisable: '
                   "JSON has no NaN or Infinity.")


def test_other_python_objects_are_refused_naming_their_path(org):
    # Bad input: a set, which json.dumps cannot write.
    assert_refused(org, {"tags": {"a"}},
                   'Activity data has a set at data["tags"], which is not JSON-serialisable.')


def test_clean_unicode_data_is_recorded_as_strict_utf8_json(org):
    """Control: astral characters, escapes, nulls, booleans and numbers are all fine."""
    data = {"name": "Lot 🌱 \u00e9\t\"q\"", "ok": True, "none": None, "n": [1, 2.5, -3], "": {"nested": []}}
    event = record_activity(organisation=org, activity_type="lot.created", data=data)
    assert json.loads(event.body)["data"] == data
    event.body.encode("utf-8")  # strict: no surrogate escapes in the text


# --- the depth of JSON text, read before parsing (finding 4 of issue 21) ------------------------------------

def test_json_text_nested_far_too_deep_is_refused_before_parsing():
    # Bad input: 941 levels, which made json.loads raise RecursionError (a 500 on Test Webhook).
    text = '{"a":' * 941 + "1" + "}" * 941
    with pytest.raises(InvalidActivityData, match=f"nested too deeply at character {5 * MAX_DEPTH + 1}: more than "
                                                  f"{MAX_DEPTH} levels"):
        json_text_depth_check(text)
    with pytest.raises(InvalidActivityData):
        json_text_depth_check("[" * 100_000)  # not even JSON: refused at once, without recursion


def test_json_text_at_the_limit_passes_and_brackets_in_strings_do_not_count():
    at_limit = json.dumps(nested(MAX_DEPTH))
    json_text_depth_check(at_limit)
    with pytest.raises(InvalidActivityData):
        json_text_depth_check(json.dumps(nested(MAX_DEPTH + 1)))
    json_text_depth_check(json.dumps({"a": "[[[[{{{{" * 100, "b": '\\"[[[[' * 50}))
    json_text_depth_check('"unterminated [[[[' + "[" * 100)  # not JSON: left for the parser to name


def test_the_depth_check_reads_a_text_full_of_quotes_in_linear_time():
    # Bad input: escaped quotes that never close a string (a backtracking reader would take minutes).
    json_text_depth_check('"' + '\\"' * 200_000)
    json_text_depth_check('\\"' * 200_000)
