"""The check that activity data is JSON text every receiver can parse, in Unicode, shallow enough to show.

json.dumps accepts more than strict JSON parsers do: lone surrogates come out
as "\\ud800" (rejected by Go, Rust's serde_json, PostgreSQL's jsonb), int or
None keys are turned into strings (so 1 and "1" collide), and deep nesting
costs every parser and the delivery page a recursion level per bracket. This
check refuses all of that at the call, naming where the bad value is.
"""

import math
import re

from subscriptions.exceptions import InvalidActivityData

# Containers nested inside the data object (the object itself is level 1). The
# delivery page pretty-prints to delivery.body_display.PRETTY_MAX_DEPTH, which
# leaves room for this plus the envelope around `data`.
MAX_DEPTH = 32


# A JSON string (escapes included; an unterminated one runs to the end, so that a text full of quotes is
# still read once, in linear time), or one bracket: what the depth check reads of a text.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def json_text_depth_check(text: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Return None if the JSON text nests at most max_depth objects and arrays; raise InvalidActivityData otherwise.

    Read before parsing: json.loads recurses once per bracket, so text nested a thousand deep
    raises RecursionError (and costs a parser's stack) before any check of the parsed value could run.
    Brackets inside strings do not count. Text that is not JSON at all is left to the parser to name.
    """
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise InvalidActivityData(
                    f"The JSON is nested too deeply at character {match.start() + 1}: more than {max_depth} levels "
                    "of objects and arrays.")
        elif token in "]}":
            depth -= 1


def activity_data_check(data: dict | list) -> None:
    """Return None if data is strict JSON in Unicode within MAX_DEPTH; raise InvalidActivityData otherwise."""
    # An explicit stack of containers, not recursion: the data may be nested thousands deep. Paths are
    # written only for containers and errors, so a large payload costs a few times json.dumps, not more.
    stack = [(data, "data", 1)]
    while stack:
        container, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidActivityData(
                f"Activity data is nested too deeply at {path}: more than {MAX_DEPTH} levels of objects and arrays."
            )
        is_object = isinstance(container, dict)
        for key, value in container.items() if is_object else enumerate(container):
            if is_object and not isinstance(key, str):
                raise InvalidActivityData(
                    f"Activity data has a key {key!r} ({type(key).__name__}) in {path}: "
                    f"JSON object keys must be strings."
                )
            if is_object and not key.isascii():
                _check_text(key, where=f"a key in {path}")
            if isinstance(value, str):
                if not value.isascii():
                    _check_text(value, where=f"a string at {_child(path, key, is_object=is_object)}")
            elif value is None or isinstance(value, int):  # bool is an int
                continue
            elif isinstance(value, float):
                if not math.isfinite(value):
                    raise InvalidActivityData(
                        f"Activity data has {value!r} at {_child(path, key, is_object=is_object)}, which is not "
                        f"JSON-serialisable: JSON has no NaN or Infinity."
                    )
            elif isinstance(value, (dict, list, tuple)):
                stack.append((value, _child(path, key, is_object=is_object), depth + 1))
            elif isinstance(value, (bytes, bytearray, memoryview)):
                raise InvalidActivityData(
                    f"Activity data has bytes at {_child(path, key, is_object=is_object)}: decode them to text "
                    f"(or base64-encode binary data) first."
                )
            else:
                raise InvalidActivityData(
                    f"Activity data has a {type(value).__name__} at {_child(path, key, is_object=is_object)}, "
                    f"which is not JSON-serialisable."
                )


def _child(path: str, key, *, is_object: bool) -> str:
    """Return the path of the item at key (an object's key or an array's index) under path."""
    return f"{path}[{_quoted(key)}]" if is_object else f"{path}[{key}]"


def _check_text(text: str, *, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = text[exc.start]
        raise InvalidActivityData(
            f"Activity data has a lone surrogate (U+{ord(char):04X}) in {where}, at character {exc.start}: "
            f"not valid Unicode text."
        ) from None


def _quoted(key: str) -> str:
    """Return key as it would be written in a path, shortened and with lone surrogates shown as escapes."""
    shown = key if len(key) <= 40 else key[:37] + "..."
    return '"' + shown.encode("utf-8", "backslashreplace").decode("utf-8").replace('"', '\\"') + '"'
