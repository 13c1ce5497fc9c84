"""Secrets: generating keys and tokens, hashing what only needs verifying, encrypting what the
server must use (HMAC secrets), comparing in constant time. Nothing here logs a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

__all__ = [
    "SecretBox",
    "hash_secret",
    "new_api_key",
    "new_token",
    "split_api_key",
    "verify_secret",
]

_API_PREFIX = "ssk"


def new_token(nbytes: int = 24) -> str:
    """Return a random URL-safe token."""
    return secrets.token_urlsafe(nbytes)


def new_api_key() -> tuple[str, str, str]:
    """Return ``(key_id, secret, full_key)`` for a new project API key."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    return key_id, secret, f"{_API_PREFIX}_{key_id}_{secret}"


def split_api_key(full_key: str) -> tuple[str, str] | None:
    """Split ``ssk_<key_id>_<secret>`` into its parts, or None when malformed."""
    parts = full_key.split("_", 2)
    if len(parts) != 3 or parts[0] != _API_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1], parts[2]


def hash_secret(secret: str) -> str:
    """Hash a high-entropy secret for storage (SHA-256; the secret is random, not a password)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


class SecretBox:
    """Encrypts secrets the server must read back (e.g. HMAC signing keys)."""

    def __init__(self, key_material: str) -> None:
        digest = hashlib.sha256(("sessionscope-box:" + key_material).encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
