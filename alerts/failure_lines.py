"""What an alert email says failed: our own words, and the endpoint's words only quoted, labelled and on one line.

A receiver chooses what its answer says, and an email from us carries our authority:
"URGENT: your account is locked, reset it at https://evil.example/" must not read as
our sentence. So the line "What failed" is written by us alone (an HTTP status and its
standard phrase, or the kind of error), and whatever the endpoint sent (its body, or a
recorded error that may quote its bytes) goes on a line of its own, labelled as its
answer, in quotes, first line only, without control or bidirectional characters, cut
to ANSWER_CHARS.
"""

import unicodedata
from dataclasses import dataclass
from http import HTTPStatus

from delivery.models import Attempt

ANSWER_CHARS = 120
# Error kinds whose recorded message is made of our words only (the phase of a timeout, an address we checked).
_OUR_MESSAGES = {Attempt.ErrorKind.TIMEOUT, Attempt.ErrorKind.DNS, Attempt.ErrorKind.BLOCKED}
ANSWER_LABEL = "The endpoint's answer, in its own words (first line)"
RECORDED_LABEL = "The error as recorded, which may quote the endpoint (first line)"


@dataclass(frozen=True)
class FailureLines:
    what: str  # our words
    quoted: str = ""  # the endpoint's words, one line, cut; "" when there are none
    label: str = ""  # what the quoted words are


def one_line(text: str | None, *, limit: int = ANSWER_CHARS) -> str:
    """Return the first non-blank line of text, without control or format characters, at most limit characters."""
    for line in (text or "").splitlines():  # every Unicode line break, U+0085 and U+2028 included
        kept = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in line)
        kept = " ".join(kept.split())
        if kept:
            return kept if len(kept) <= limit else kept[: limit - 1].rstrip() + "…"
    return ""


def failure_lines(attempt: Attempt | None, *, recorded: str = "") -> FailureLines:
    """Return the lines saying what failed in this attempt (or, without one, the recorded summary, quoted)."""
    if attempt is None:
        return FailureLines(what="The endpoint did not accept the delivery.", quoted=one_line(recorded),
                            label=RECORDED_LABEL if one_line(recorded) else "")
    if attempt.error_kind:
        kind = attempt.get_error_kind_display()
        if attempt.error_kind in _OUR_MESSAGES:
            return FailureLines(what=one_line(attempt.error_message, limit=300) or kind)
        quoted = one_line(attempt.error_message)
        return FailureLines(what=f"{kind}.", quoted=quoted, label=RECORDED_LABEL if quoted else "")
    try:
        phrase = HTTPStatus(attempt.status_code).phrase
    except ValueError:
        phrase = ""
    quoted = one_line(attempt.response_body)
    return FailureLines(what=f"HTTP {attempt.status_code} {phrase}".strip(), quoted=quoted,
                        label=ANSWER_LABEL if quoted else "")
