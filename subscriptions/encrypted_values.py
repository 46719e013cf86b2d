"""Every value stored encrypted under WEBHOOKS_ENCRYPTION_KEYS, declared here and nowhere else.

`manage.py rotate_encryption_keys` re-encrypts exactly what this list names, so a value
missing from it would stay under an old key and be lost when that key is removed.
`subscriptions/tests/test_encrypted_values.py` fails when a model has a field that holds
(or, by its name, may hold) a Fernet token and is not listed here.

Models are named by label ("app.Model"), not imported: an app that `subscriptions` must not
import (delivery, alerts, ...) can still list its fields here. The one-time hand-over of a new
secret in the session is not listed: it lives for one page view, not in a model.
"""

from collections.abc import Callable
from dataclasses import dataclass

from subscriptions.custom_headers import secret_tokens, secret_tokens_replaced


def _whole_value(value) -> list[str]:
    return [value] if value else []


def _whole_value_replaced(value, replace: Callable[[str], str]):
    return replace(value) if value else value


@dataclass(frozen=True)
class EncryptedField:
    """One model field holding encrypted values: how to find its tokens and write them back replaced."""

    label: str  # what its values are, plural, as the rotation reports them
    model: str  # "app_label.ModelName"
    field: str
    # The Fernet tokens inside a stored value (a text column holds one; a JSON column may hold several).
    tokens: Callable[[object], list[str]] = _whole_value
    # The stored value with each token t replaced by replace(t), everything else as it was.
    replaced: Callable[[object, Callable[[str], str]], object] = _whole_value_replaced


ENCRYPTED_FIELDS: tuple[EncryptedField, ...] = (
    EncryptedField("signing secrets", "subscriptions.Subscription", "secret_encrypted"),
    EncryptedField("previous signing secrets of planned rotations", "subscriptions.Subscription",
                   "previous_secret_encrypted"),
    EncryptedField("secret custom header values", "subscriptions.Subscription", "custom_headers",
                   tokens=secret_tokens, replaced=secret_tokens_replaced),
)
