"""Bearer tokens for the Vault-style APIs: each belongs to an account of
kms.service.accounts and carries that account's policies.

Only a SHA-256 of each token is stored (token / <hash> -> {"account",
"created", "expires"}), so the store never holds a usable token. A token is
"kms." followed by 32 random bytes, base64url.
"""
import hashlib
import secrets
from typing import Any, Dict, Optional

from kms import errors
from kms.clock import Clock
from kms.store import LogStore, Op


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(self, store: LogStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def create(self, secret_id: str, ttl: int = 0, token: Optional[str] = None) -> Dict[str, Any]:
        """Returns {"token", "expires"}; ttl 0 means no expiry."""
        if ttl < 0:
            raise errors.InvalidParameter("ttl must be 0 (no expiry) or a number of seconds")
        token = token or "kms." + secrets.token_urlsafe(32)
        if len(token) < 16 or not token.isprintable() or " " in token:
            raise errors.InvalidParameter("a token needs at least 16 printable characters, no blanks")
        now = self.clock.now_s()
        record = {"account": secret_id, "created": now, "expires": now + ttl if ttl else 0}

        def build() -> list:
            if self.store.get("account", secret_id) is None:
                raise errors.InvalidParameter(f"no account with SecretId {secret_id}")
            return [Op("put", "token", _digest(token), record)]

        self.store.commit(build)
        return {"token": token, "expires": record["expires"]}

    def lookup(self, token: Optional[str]) -> Optional[Dict[str, Any]]:
        """The account behind a live token, or None."""
        if not token:
            return None
        entry = self.store.get("token", _digest(token))
        if entry is None or (entry["expires"] and entry["expires"] <= self.clock.now()):
            return None
        account = self.store.get("account", entry["account"])
        if account is None:
            return None
        return {**account, "token_created": entry["created"], "token_expires": entry["expires"]}
