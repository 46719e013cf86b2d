"""What a receiver answered, made storable on every store: text without NUL, headers bounded.

PostgreSQL refuses NUL in text columns and \\u0000 (or a lone surrogate) in
jsonb, so a receiver's odd bytes once made its attempt unrecordable: the
transaction rolled back and the event was sent again, forever. Clean UTF-8 is
stored as it came; anything else is stored as readable text where each byte
that is not UTF-8, and each control character, is written \\xNN. In escaped
text a backslash is doubled, so the escaped form reads back to the exact bytes.
"""

import codecs
import re
from collections.abc import Iterable, Mapping

MAX_HEADERS = 100
MAX_HEADER_NAME = 200
MAX_HEADER_VALUE = 1000
# Header names never contain parentheses or spaces: this key cannot be a real header.
DROPPED_HEADERS_KEY = "(headers not recorded)"

# C0 controls but tab, CR and LF (which bodies use as text), and lone
# surrogates (surrogateescape's stand-ins for bytes that are not UTF-8).
_NOT_CLEAN_BODY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# In a header value CR and LF are not text either.
_NOT_CLEAN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\ud800-\udfff]")
# What escaped text writes as \xNN, and the backslash, doubled so escaping can be undone.
_BODY_ESCAPES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\\\ud800-\udfff]")
_HEADER_ESCAPES = re.compile(r"[\x00-\x08\x0a-\x1f\\\ud800-\udfff]")


def body_for_storage(*, raw: bytes, truncated: bool = False) -> tuple[str, bool]:
    """Return (text, escaped): raw as text with no NUL, and whether it had to be written with \\xNN escapes.

    `truncated`: raw was cut at a size cap, so a UTF-8 character split at the
    very end is dropped rather than making the whole body count as not text.
    """
    text = _decoded(raw, cut=truncated)
    if not _NOT_CLEAN_BODY.search(text):
        return text, False
    return _BODY_ESCAPES.sub(_escape, text), True


def headers_for_storage(*, headers: Mapping | Iterable[tuple]) -> dict[str, str]:
    """Return at most MAX_HEADERS headers as {name: value}, escaped like bodies and capped, plus a drop count.

    Takes a mapping or (name, value) pairs, as str (http.client's latin-1
    reading of the bytes) or bytes. A repeated name keeps its values joined
    with ", ", as HTTP allows.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    stored: dict[str, str] = {}
    dropped = 0
    for name, value in pairs:
        key = _header_text(name, limit=MAX_HEADER_NAME)
        text = _header_text(value, limit=MAX_HEADER_VALUE)
        if key in stored:
            stored[key] = f"{stored[key]}, {text}"[:MAX_HEADER_VALUE]
        elif len(stored) < MAX_HEADERS:
            stored[key] = text
        else:
            dropped += 1
    if dropped:
        stored[DROPPED_HEADERS_KEY] = f"{dropped:,} more headers were not recorded (at most {MAX_HEADERS} are kept)."
    return stored


def _header_text(value: str | bytes, *, limit: int) -> str:
    """Return a header name or value as clean text, or escaped like a body, at most limit characters."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif value.isascii() or max(value) <= "\xff":
        raw = value.encode("latin-1")  # http.client reads header bytes as latin-1: back to what was sent
    else:
        raw = value.encode("utf-8", "backslashreplace")
    # A character is at most 4 bytes: what lies beyond cannot fit in limit characters.
    text = _decoded(raw[: limit * 4], cut=len(raw) > limit * 4)[:limit]
    if not _NOT_CLEAN_HEADER.search(text):
        return text
    return _cut_escaped(_HEADER_ESCAPES.split(text), _HEADER_ESCAPES.findall(text), limit=limit)


def _decoded(raw: bytes, *, cut: bool) -> str:
    """Return raw as text, each byte that is not UTF-8 as a lone surrogate; a character cut at the end dropped."""
    if cut:
        return codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(raw, final=False)
    return raw.decode("utf-8", "surrogateescape")


def _cut_escaped(plain: list[str], special: list[str], *, limit: int) -> str:
    """Join plain runs and escaped characters up to limit, never cutting an escape in two."""
    out: list[str] = []
    size = 0
    for index, run in enumerate(plain):
        if size + len(run) >= limit:
            out.append(run[: limit - size])
            break
        out.append(run)
        size += len(run)
        if index < len(special):
            escaped = _escape_char(special[index])
            if size + len(escaped) > limit:
                break
            out.append(escaped)
            size += len(escaped)
    return "".join(out)


def _escape(match: re.Match) -> str:
    return _escape_char(match.group())


def _escape_char(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    code = ord(ch)
    return f"\\x{code - 0xDC00 if code >= 0xDC80 else code:02x}"
