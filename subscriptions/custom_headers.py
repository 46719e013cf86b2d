"""Custom headers per subscription: a few name/value pairs sent on every attempt.

For receivers behind an API gateway that wants a key or a tenant id of its own.
Names are HTTP tokens and may not be ones the sender owns (Host, Content-*,
User-Agent, webhook-*) or hop-by-hop ones; values are one line of visible text.
A value marked secret is stored encrypted (Fernet, like the signing secret),
sent as is, and shown masked everywhere, the attempt's recorded request included.
"""

import re

from django.core.exceptions import ValidationError

from subscriptions.signing_secrets import decrypt_secret, encrypt_secret

MAX_HEADERS = 10
MAX_NAME = 64
MAX_VALUE = 1000
MASK = "********"
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_RESERVED = {"host", "user-agent", "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
             "expect"}
_RESERVED_PREFIXES = ("content-", "webhook-", "proxy-")


def headers_clean(*, headers: list[dict], previous: list[dict] | None = None) -> list[dict]:
    """Return the headers to store (secret values encrypted), or raise ValidationError naming each problem.

    Each entry is {"name", "value", "secret"}; a secret entry whose value is the mask (or empty)
    keeps the stored value of the same name from `previous` (the form never shows it).
    """
    kept = {h["name"].lower(): h for h in (previous or []) if h.get("secret")}
    rows = [h for h in headers if (h.get("name") or "").strip() or (h.get("value") or "").strip()]
    errors, cleaned, seen = [], [], set()
    if len(rows) > MAX_HEADERS:
        errors.append(f"At most {MAX_HEADERS} custom headers.")
    for row in rows[:MAX_HEADERS]:
        name = (row.get("name") or "").strip()
        value = (row.get("value") or "").strip()
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
            cleaned.append({"name": name, "value": kept[lower]["value"], "secret": True})
            continue
        if not value:
            errors.append(f"{name} needs a value.")
            continue
        if len(value) > MAX_VALUE or any(ord(c) < 32 or ord(c) == 127 for c in value):
            errors.append(f"The value of {name} must be one line of at most {MAX_VALUE} visible characters.")
            continue
        cleaned.append({"name": name, "value": encrypt_secret(value) if secret else value, "secret": secret})
    if errors:
        raise ValidationError({"custom_headers": errors})
    return cleaned


def headers_for_sending(*, stored: list[dict]) -> dict[str, str]:
    """Return the headers as sent: secret values decrypted."""
    return {h["name"]: decrypt_secret(h["value"]) if h.get("secret") else h["value"] for h in stored or []}


def headers_shown(*, stored: list[dict]) -> dict[str, str]:
    """Return the headers as pages and the attempt log show them: secret values masked."""
    return {h["name"]: MASK if h.get("secret") else h["value"] for h in stored or []}
