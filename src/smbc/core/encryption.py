"""Secrets at rest: Fernet with MultiFernet rotation (newest key encrypts, every key decrypts), and
keyed hashes (HMAC) of personal data that must stay comparable but not readable."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEYED_HASH_PREFIX = "hmac:"
# Plaintexts `decrypt_remembered` keeps per box; past this many the memory starts again.
MAX_REMEMBERED = 4096
_KEYED_HASH_PURPOSE = b"smbc: keyed hash of personal data"


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed (SMBC_SECRET_KEY)")
        try:
            fernets = [Fernet(k.encode()) for k in keys]
            self._newest = fernets[0]
            self._fernet = MultiFernet(fernets)
            # One HMAC key per configured key, derived from it (never the encryption key itself).
            self._hash_keys = [hmac.digest(k.encode(), _KEYED_HASH_PURPOSE, "sha256") for k in keys]
        except (ValueError, TypeError) as exc:
            raise ValueError(
                "SMBC_SECRET_KEY must be comma-separated Fernet keys (32 url-safe base64 bytes each)"
            ) from exc
        self._remembered: dict[str, str] = {}

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "cannot decrypt: no configured key matches (was SMBC_SECRET_KEY changed?)"
            ) from exc

    def decrypt_remembered(self, token: str) -> str:
        """`decrypt`, remembering the answer per ciphertext: for a secret read at every request (a
        store's webhook secret). A changed secret is a new ciphertext, so nothing is used stale."""
        plaintext = self._remembered.get(token)
        if plaintext is None:
            plaintext = self.decrypt(token)
            if len(self._remembered) >= MAX_REMEMBERED:
                self._remembered.clear()
            self._remembered[token] = plaintext
        return plaintext

    def rotate(self, token: str) -> str:
        """Re-encrypt under the newest key; ValueError when no configured key can read it."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("cannot decrypt: no configured key matches") from exc

    def keyed_hash(self, text: str) -> str:
        """`hmac:<hex>` of `text` under the newest key: equal texts give equal hashes, and nobody
        without SMBC_SECRET_KEY can tell which text it was (not even by trying likely ones)."""
        return self.keyed_hashes(text)[0]

    def keyed_hashes(self, text: str) -> list[str]:
        """`keyed_hash` under every configured key, newest first: a lookup finds what was hashed
        before a rotation while the old key is still configured."""
        data = text.encode()
        return [KEYED_HASH_PREFIX + hmac.new(k, data, hashlib.sha256).hexdigest() for k in self._hash_keys]

    def under_newest_key(self, token: str) -> bool:
        """Whether the newest key alone reads `token` (a rotation has nothing to do for it)."""
        try:
            self._newest.decrypt(token.encode())
        except InvalidToken:
            return False
        return True


_box: SecretBox | None = None


def configure(keys: list[str]) -> SecretBox:
    global _box
    _box = SecretBox(keys)
    return _box


def get_box() -> SecretBox:
    if _box is None:
        raise RuntimeError("encryption is not configured: call smbc.core.encryption.configure() at start")
    return _box
