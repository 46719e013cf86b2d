"""Signing secrets: generated with `secrets`, kept encrypted at rest.

Secrets are `whsec_` + base64 of 32 random bytes (Standard Webhooks). At rest
they are Fernet tokens under WEBHOOKS_ENCRYPTION_KEYS (a MultiFernet: the first
key encrypts, every key decrypts, so keys can be rotated).
"""

import base64
import secrets as _secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "whsec_"
KEY_BYTES = 32


def generate_secret() -> str:
    """Return a new `whsec_...` secret."""
    return PREFIX + base64.b64encode(_secrets.token_bytes(KEY_BYTES)).decode()


def secret_key_bytes(secret: str) -> bytes:
    """Return the HMAC key inside a `whsec_...` secret."""
    return base64.b64decode(secret.removeprefix(PREFIX))


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.WEBHOOKS_ENCRYPTION_KEYS))


def encrypt_secret(secret: str) -> str:
    """Return the secret encrypted under the newest key."""
    return fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    """Return the plain secret; for the delivery code only."""
    return fernet().decrypt(token.encode()).decode()


def reencrypt_secret(token: str) -> str:
    """Return the token re-encrypted under the newest key."""
    return fernet().rotate(token.encode()).decode()


def encrypted_under_newest_key(token: str) -> bool:
    """Return True if the newest key alone decrypts the token (nothing to rotate)."""
    try:
        Fernet(settings.WEBHOOKS_ENCRYPTION_KEYS[0]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True
