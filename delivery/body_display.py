"""Bodies and headers as the delivery page shows them: pretty JSON when cheap, else raw text, always bounded.

A stored body can be anything a receiver sent (or, for old events, data
nested far deeper than record_activity now allows). Pretty-printing follows
the nesting, so it is tried only when a linear scan says the JSON is shallow
enough, and stops as soon as the text would outgrow PRETTY_MAX_CHARS: a
5.5 KB body at depth 200 once pretty-printed to 1.6 MB, and 60 KB of brackets
once raised RecursionError (a 500).
"""

import itertools
import json
import re
from dataclasses import dataclass

# Room for subscriptions.activity_data.MAX_DEPTH plus the envelope around `data`, with margin.
PRETTY_MAX_DEPTH = 64
PRETTY_MAX_CHARS = 128 * 1024
RAW_MAX_CHARS = 64 * 1024
# More than recorded_answer keeps (its MAX_HEADERS and the drop-count entry): answers recorded
# now show in full; this bounds rows stored before that cap.
MAX_HEADERS_SHOWN = 120
MAX_HEADER_CHARS = 1000
ESCAPED_NOTE = "Not UTF-8 text: shown with \\xNN escapes."

# A JSON string, or an unterminated one running to the end: a match never fails once started, so a
# scan stays linear (a pattern that needs the closing quote retries from every quote inside: quadratic).
_STRING = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*(?:"|\\?\Z)')
_NOT_JSON = object()
_BRACKET = re.compile(r"[\[\]{}]")


@dataclass(frozen=True)
class ShownBody:
    text: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShownHeaders:
    rows: list[tuple[str, str]]
    hidden: int  # headers stored but not shown


def body_shown(*, text: str, escaped: bool = False) -> ShownBody:
    """Return the body pretty-printed if it is JSON within the depth and size bounds, else raw and capped."""
    notes = [ESCAPED_NOTE] if escaped else []
    value = _NOT_JSON
    if not escaped and len(text) <= PRETTY_MAX_CHARS:
        depth = json_depth(text=text)
        if depth > PRETTY_MAX_DEPTH:
            notes.append(f"Nested {depth:,} levels deep (more than {PRETTY_MAX_DEPTH}): shown as received.")
        else:
            value = _parsed(text)
    if value is not _NOT_JSON:
        pretty = _pretty(value)
        if pretty is not None:
            return ShownBody(pretty)
        notes.append(f"Too long to pretty-print (over {PRETTY_MAX_CHARS:,} characters): shown as received.")
    if len(text) > RAW_MAX_CHARS:
        notes.append(f"Showing the first {RAW_MAX_CHARS:,} of {len(text):,} characters.")
        text = text[:RAW_MAX_CHARS]
    return ShownBody(text, tuple(notes))


def headers_shown(*, headers) -> ShownHeaders:
    """Return at most MAX_HEADERS_SHOWN (name, value) rows, each capped, and how many were left out."""
    if not isinstance(headers, dict):
        return ShownHeaders([("(stored headers)", _capped(str(headers)))], 0)
    rows = [(_capped(str(k)), _capped(str(v))) for k, v in itertools.islice(headers.items(), MAX_HEADERS_SHOWN)]
    return ShownHeaders(rows, max(0, len(headers) - MAX_HEADERS_SHOWN))


def json_depth(*, text: str) -> int:
    """Return the deepest nesting of brackets in text outside JSON strings, in linear time and no recursion."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub('""', text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


def _parsed(text: str):
    """Return the JSON value of text, or _NOT_JSON."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _pretty(value) -> str | None:
    """Return value as indented JSON, or None as soon as it would exceed PRETTY_MAX_CHARS."""
    chunks: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(value):
        size += len(chunk)
        if size > PRETTY_MAX_CHARS:
            return None
        chunks.append(chunk)
    return "".join(chunks)


def _capped(text: str) -> str:
    return text if len(text) <= MAX_HEADER_CHARS else text[: MAX_HEADER_CHARS - 1] + "…"
