"""Standard Webhooks signatures: one pure signer, one constant-time verifier.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}` over the exact
bytes sent; the signature is `v1,` + base64(HMAC-SHA256(key, content)).
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from subscriptions.signing_secrets import secret_key_bytes

TOLERANCE_SECONDS = 5 * 60


class SignatureError(ValueError):
    """The request does not carry a valid, fresh signature."""


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` value (`v1,<base64>`) for these bytes."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(*, secret: str, msg_id: str, timestamp: int, body: bytes,
                   also: tuple[str, ...] = ()) -> dict[str, str]:
    """Return the three Standard Webhooks headers for one attempt.

    `also`: more secrets to sign with (during a planned rotation the old one), each signature
    space-separated in `webhook-signature` as Standard Webhooks allows; a receiver accepts any.
    """
    signatures = [sign(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in (secret, *also)]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def verify(
    *,
    secrets: str | list[str],
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Return None if a `v1` signature in headers matches one of the secrets; raise SignatureError otherwise.

    For receivers: accepts several space-separated signatures in one header (as
    sent during a key rotation) and several secrets (while a receiver rotates),
    and refuses timestamps more than `tolerance` seconds away from now.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    timestamp = lower.get("webhook-timestamp")
    header = lower.get("webhook-signature")
    if not (msg_id and timestamp and header):
        raise SignatureError("Missing webhook-id, webhook-timestamp or webhook-signature header.")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a whole number of seconds.") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise SignatureError("webhook-timestamp is too far from now (possible replay).")
    candidates = [s for s in (secrets if isinstance(secrets, list) else [secrets])]
    offered = [part.split(",", 1)[1] for part in header.split() if part.startswith("v1,")]
    for secret in candidates:
        expected = sign(secret=secret, msg_id=msg_id, timestamp=ts, body=body).split(",", 1)[1]
        for signature in offered:
            if hmac.compare_digest(expected.encode(), signature.encode()):
                return None
    raise SignatureError("No matching signature.")
