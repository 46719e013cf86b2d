"""The check that activity data is JSON text every receiver can parse, in Unicode, shallow enough to show.

json.dumps accepts more than strict JSON parsers do: lone surrogates come out
as "\\ud800" (rejected by Go, Rust's serde_json, PostgreSQL's jsonb), int or
None keys are turned into strings (so 1 and "1" collide), and deep nesting
costs every parser and the delivery page a recursion level per bracket. This
check refuses all of that at the call, naming where the bad value is.
"""

import math

from subscriptions.exceptions import InvalidActivityData

# Containers nested inside the data object (the object itself is level 1). The
# delivery page pretty-prints to delivery.body_display.PRETTY_MAX_DEPTH, which
# leaves room for this plus the envelope around `data`.
MAX_DEPTH = 32


def activity_data_check(data) -> None:
    """Return None if data is strict JSON in Unicode within MAX_DEPTH; raise InvalidActivityData otherwise."""
    # An explicit stack, not recursion: the data may be nested thousands deep.
    stack = [(data, "data", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, where=f"a string at {path}")
        elif value is None or isinstance(value, int):  # bool is an int
            continue
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidActivityData(
                    f"Activity data has {value!r} at {path}, which is not JSON-serialisable: JSON has no NaN "
                    f"or Infinity."
                )
        elif isinstance(value, (dict, list, tuple)):
            if depth > MAX_DEPTH:
                raise InvalidActivityData(
                    f"Activity data is nested too deeply at {path}: more than {MAX_DEPTH} levels of objects "
                    f"and arrays."
                )
            stack.extend(_children(value, path=path, depth=depth))
        elif isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidActivityData(
                f"Activity data has bytes at {path}: decode them to text (or base64-encode binary data) first."
            )
        else:
            raise InvalidActivityData(
                f"Activity data has a {type(value).__name__} at {path}, which is not JSON-serialisable."
            )


def _children(container, *, path: str, depth: int) -> list[tuple]:
    """Return (value, path, depth) of each item of a dict, list or tuple, checking dict keys on the way."""
    if not isinstance(container, dict):
        return [(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(container)]
    children = []
    for key, item in container.items():
        if not isinstance(key, str):
            raise InvalidActivityData(
                f"Activity data has a key {key!r} ({type(key).__name__}) in {path}: JSON object keys must be strings."
            )
        _check_text(key, where=f"a key in {path}")
        children.append((item, f"{path}[{_quoted(key)}]", depth + 1))
    return children


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
