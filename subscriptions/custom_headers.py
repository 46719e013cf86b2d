"""Custom headers per subscription: a few name/value pairs sent on every attempt.

For receivers behind an API gateway that wants a key or a tenant id of its own.
Names are HTTP tokens and may not be ones the sender owns (Host, Content-*,
User-Agent, webhook-*) or hop-by-hop ones. Values are what RFC 9110 lets a field
value hold, visible ASCII only: VCHAR, space and tab (no obs-text, no controls, no
C1 controls such as U+0085, nothing outside ASCII), at most MAX_VALUE characters.
This is the one rule: the form, the services and any later API all call headers_clean.

A value marked secret is stored encrypted (Fernet, like the signing secret;
subscriptions.encrypted_values lists it for key rotation), sent as is, and shown
masked everywhere: the attempt's recorded request, and any error text that might
carry it (secrets_scrubbed).
"""

import json
import re
from collections.abc import Callable

from cryptography.fernet import InvalidToken
from django.core.exceptions import ValidationError

from subscriptions.signing_secrets import decrypt_secret, encrypt_secret

MAX_HEADERS = 10
MAX_NAME = 64
MAX_VALUE = 1000
MASK = "********"
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# RFC 9110 5.5 field-value without obs-text: visible ASCII (VCHAR), SP and HTAB.
_FIELD_VALUE = re.compile(r"[\x21-\x7e \t]*")
# What HTTP itself trims around a field value (OWS); str.strip() would also eat U+0085 and U+00A0.
_OWS = " \t"
_RESERVED = {"host", "user-agent", "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
             "expect"}
_RESERVED_PREFIXES = ("content-", "webhook-", "proxy-")


class CustomHeaderUnsendable(ValueError):
    """A stored header cannot be sent (written before today's rule, or under a removed key).

    Its message names the header and says what to do; it never holds the value or where in it the problem is,
    so it can be recorded on the attempt, shown to every member and put in an alert email.
    """


def trimmed(text: str | None) -> str:
    """Return text without the spaces and tabs HTTP trims around a field value (nothing else is removed)."""
    return (text or "").strip(_OWS)


def value_problem(*, name: str, value: str, secret: bool) -> str | None:
    """Return why value cannot be this header's value, or None if HTTP can carry it as is.

    A secret value's message does not say which character is wrong: it is read on screens and in logs.
    """
    if len(value) > MAX_VALUE:
        return f"The value of {name} must be at most {MAX_VALUE} characters."
    if _FIELD_VALUE.fullmatch(value):
        return None
    rule = (f"The value of {name} may only hold visible ASCII characters, spaces and tabs (what an HTTP header "
            f"can carry): no line breaks, control characters, accents or symbols such as €")
    if secret:
        return rule + "."
    position, char = next((i, c) for i, c in enumerate(value) if not _FIELD_VALUE.fullmatch(c))
    return rule + f"; character {position + 1} is {_shown(char)}."


def _shown(char: str) -> str:
    return f"U+{ord(char):04X}" if not char.isprintable() else f"“{char}” (U+{ord(char):04X})"


def headers_clean(*, headers: list[dict], previous: list[dict] | None = None) -> list[dict]:
    """Return the headers to store (secret values encrypted), or raise ValidationError naming each problem.

    Each entry is {"name", "value", "secret"}; a secret entry whose value is the mask (or empty)
    keeps the stored value of the same name from `previous` (the form never shows it), if that
    stored value can still be sent.
    """
    kept = {h["name"].lower(): h for h in (previous or []) if h.get("secret")}
    rows = [h for h in headers if trimmed(h.get("name")) or trimmed(h.get("value"))]
    if len(rows) > MAX_HEADERS:
        # All or nothing: cutting the list would drop headers the caller meant to send.
        raise ValidationError({"custom_headers": [
            f"At most {MAX_HEADERS} custom headers: {len(rows)} were given. Remove {len(rows) - MAX_HEADERS}; "
            "nothing was saved."]})
    errors, cleaned, seen = [], [], set()
    for row in rows:
        name = trimmed(row.get("name"))
        value = trimmed(row.get("value"))
        secret = bool(row.get("secret"))
        lower = name.lower()
        if value == MASK and not (secret and lower in kept):
            # The mask stands for a stored secret of this very name: it cannot become another
            # header's value or a plain one, and must never be stored as a value itself.
            errors.append(f"Type the value of {name or 'this header'} again: a secret value is never shown, "
                          "so it cannot move to another name or stop being secret.")
            continue
        if not name:
            errors.append("A custom header needs a name.")
            continue
        if len(name) > MAX_NAME or not _TOKEN.match(name):
            errors.append(f"{name[:MAX_NAME]!r} is not a valid header name (letters, digits and - only).")
            continue
        if lower in _RESERVED or lower.startswith(_RESERVED_PREFIXES):
            errors.append(f"{name} is set by the sender or by HTTP itself and cannot be a custom header.")
            continue
        if lower in seen:
            errors.append(f"{name} is given twice.")
            continue
        seen.add(lower)
        if secret and value in ("", MASK) and lower in kept:
            try:
                _sendable(kept[lower])
            except CustomHeaderUnsendable:
                errors.append(f"Type the value of {name} again: the stored one cannot be sent (it was saved "
                              "before values were limited to visible ASCII, or under a removed encryption key).")
                continue
            cleaned.append({"name": name, "value": kept[lower]["value"], "secret": True})
            continue
        if not value:
            errors.append(f"{name} needs a value.")
            continue
        if problem := value_problem(name=name, value=value, secret=secret):
            errors.append(problem)
            continue
        cleaned.append({"name": name, "value": encrypt_secret(value) if secret else value, "secret": secret})
    if errors:
        raise ValidationError({"custom_headers": errors})
    return cleaned


def _sendable(header: dict) -> str:
    """Return the value to send (decrypted if secret); raise CustomHeaderUnsendable if it cannot be sent."""
    name = header["name"]
    try:
        value = decrypt_secret(header["value"]) if header.get("secret") else header["value"]
    except InvalidToken:
        raise CustomHeaderUnsendable(
            f"The custom header {name} cannot be decrypted (was its encryption key removed?): type its value "
            "again on the Edit page.") from None
    if not isinstance(value, str) or not _FIELD_VALUE.fullmatch(value) or not value:
        raise CustomHeaderUnsendable(
            f"The custom header {name} has a stored value HTTP cannot carry (only visible ASCII, spaces and tabs "
            "can be sent): type its value again on the Edit page.")
    return value


def headers_for_sending(*, stored: list[dict]) -> dict[str, str]:
    """Return the headers as sent: secret values decrypted. Raise CustomHeaderUnsendable for one that cannot go."""
    return {h["name"]: _sendable(h) for h in stored or []}


def headers_shown(*, stored: list[dict]) -> dict[str, str]:
    """Return the headers as pages and the attempt log show them: secret values masked."""
    return {h["name"]: MASK if h.get("secret") else h["value"] for h in stored or []}


def secrets_scrubbed(text: str, *, stored: list[dict]) -> str:
    """Return text with every secret header value of `stored` replaced by the mask, in any form it may take there.

    For error texts before they are recorded (an exception's message may quote a request's headers):
    the value as is, as Python's repr and JSON escape it, and its UTF-8 bytes as repr shows them.
    A stored value that cannot be decrypted cannot be in the text (it was never sent) and is skipped.
    """
    if not text:
        return text
    forms = set()
    for header in stored or []:
        if not header.get("secret"):
            continue
        try:
            value = decrypt_secret(header["value"])
        except (InvalidToken, TypeError, ValueError):
            continue
        if value:
            forms |= {value, repr(value)[1:-1], json.dumps(value)[1:-1], repr(value.encode("utf-8"))[2:-1]}
    # The longest first: a value inside another's escaped form is not left half-masked.
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def secret_tokens(stored) -> list[str]:
    """Return the Fernet tokens of the secret values in a stored header list (for key rotation)."""
    return [h["value"] for h in stored or [] if h.get("secret") and h.get("value")]


def secret_tokens_replaced(stored, replace: Callable[[str], str]) -> list[dict]:
    """Return the stored header list with each secret value's token t replaced by replace(t)."""
    return [{**h, "value": replace(h["value"])} if h.get("secret") and h.get("value") else h for h in stored or []]
