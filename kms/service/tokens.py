"""Bearer tokens for the Vault-style APIs: each belongs to an account of
kms.service.accounts and carries that account's policies.

Only a SHA-256 of each token is stored (token / <hash> -> {"account",
"created", "expires", "accessor"}), so the store never holds a usable token.
A token is "kms." followed by 32 random bytes, base64url.

The accessor names a token in listings and revocations without being it: a
random id stored with the token, so it says nothing about the token (a
prefix of the hash would let anyone holding an accessor test guesses of a
weak, operator-chosen token offline). Records made before accessors existed
are named by "sha256:" and a prefix of their hash instead.

Revocation deletes the record. Every worker re-reads the store before it
authenticates a request, so a revoked token is refused from the next request
on, by every worker.
"""
import hashlib
import secrets
from typing import Any, Callable, Dict, List, Optional, Tuple

from kms import errors
from kms.clock import Clock
from kms.store import Build, LogStore, Op, Staged, commit_together

ACCESSOR_BYTES = 12
# A TTL beyond this is a typo, not a plan; 0 still means "never expires".
MAX_TTL = 10 * 366 * 86400


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def accessor_of(digest: str, entry: Dict[str, Any]) -> str:
    return entry.get("accessor") or "sha256:" + digest[:24]


class TokenService:
    def __init__(self, store: LogStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def _live(self, entry: Dict[str, Any]) -> bool:
        return not entry["expires"] or entry["expires"] > self.clock.now()

    def prepare(self, secret_id: str, ttl: int = 0, token: Optional[str] = None,
                replace: bool = False) -> Tuple[Dict[str, Any], Build]:
        """Validate and generate now; the Build checks the account (which
        may be put earlier in the same commit) when it runs. With replace,
        the same commit revokes every other token of the account.
        Returns ({"token", "expires", "accessor"}, build); ttl 0 means no expiry."""
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL:
            raise errors.InvalidParameter(f"ttl must be 0 (no expiry) or 1 to {MAX_TTL} seconds")
        token = token or "kms." + secrets.token_urlsafe(32)
        if len(token) < 16 or not token.isprintable() or " " in token:
            raise errors.InvalidParameter("a token needs at least 16 printable characters, no blanks")
        digest = _digest(token)
        now = self.clock.now_s()
        record = {"account": secret_id, "created": now, "expires": now + ttl if ttl else 0,
                  "accessor": secrets.token_hex(ACCESSOR_BYTES)}

        def build(staged: Staged) -> List[Op]:
            if staged.get("account", secret_id) is None:
                raise errors.InvalidParameter(f"no account with SecretId {secret_id}")
            # An operator-chosen token could equal another account's: putting
            # it would silently hand that token over to this account.
            if staged.get("token", digest) is not None:
                raise errors.InvalidParameter("that token is in use already")
            ops = [Op("del", "token", other) for other, entry in staged.items("token").items()
                   if replace and entry["account"] == secret_id]
            return ops + [Op("put", "token", digest, record)]

        return {"token": token, "expires": record["expires"], "accessor": record["accessor"]}, build

    def create(self, secret_id: str, ttl: int = 0, token: Optional[str] = None) -> Dict[str, Any]:
        """Returns {"token", "expires", "accessor"}: the only time the token is shown."""
        issued, build = self.prepare(secret_id, ttl, token)
        commit_together(self.store, [build])
        return issued

    def lookup(self, token: Optional[str]) -> Optional[Dict[str, Any]]:
        """The account behind a live token, or None."""
        return self.lookup_digest(_digest(token)) if token else None

    def lookup_digest(self, digest: str) -> Optional[Dict[str, Any]]:
        """lookup() for a token known only by its digest (a console session)."""
        entry = self.store.get("token", digest)
        if entry is None or not self._live(entry):
            return None
        account = self.store.get("account", entry["account"])
        if account is None:
            return None
        return {**account, "token_created": entry["created"], "token_expires": entry["expires"]}

    @staticmethod
    def digest_of(token: str) -> str:
        return _digest(token)

    def has_live(self, secret_id: str) -> bool:
        """Whether the account holds at least one unexpired token."""
        return any(entry["account"] == secret_id and self._live(entry)
                   for entry in self.store.items("token").values())

    def listing(self, secret_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """Every token (of one account, if given), never the token itself."""
        accounts = self.store.items("account")
        return [{"accessor": accessor_of(digest, entry), "account": entry["account"],
                 "name": accounts.get(entry["account"], {}).get("name"),
                 "created": entry["created"], "expires": entry["expires"]}
                for digest, entry in sorted(self.store.items("token").items(),
                                            key=lambda item: item[1]["created"])
                if secret_id is None or entry["account"] == secret_id]

    def _revoke_where(self, chosen: Callable[[str, Dict[str, Any]], bool]) -> List[str]:
        """Delete, in one commit, the tokens chosen(digest, entry) picks;
        returns their accessors."""
        revoked: List[str] = []

        def build() -> List[Op]:
            revoked.clear()
            ops = []
            for digest, entry in self.store.items("token").items():
                if chosen(digest, entry):
                    revoked.append(accessor_of(digest, entry))
                    ops.append(Op("del", "token", digest))
            return ops

        self.store.commit(build)
        return revoked

    def revoke(self, token: str) -> bool:
        """Revoke this token (auth/token/revoke-self); False if it was not
        stored (never issued, or revoked already)."""
        if not token:
            return False
        digest = _digest(token)
        return bool(self._revoke_where(lambda d, entry: d == digest))

    def revoke_accessor(self, accessor: str, secret_id: Optional[str] = None) -> None:
        """Revoke the token named by `accessor` (only if it belongs to
        secret_id, when given)."""
        revoked = self._revoke_where(lambda d, entry: accessor_of(d, entry) == accessor
                                     and secret_id in (None, entry["account"]))
        if not revoked:
            raise errors.InvalidParameter(f"no token with accessor {accessor!r}"
                                          + (f" belongs to {secret_id}" if secret_id else ""))

    def revoke_account(self, secret_id: str) -> List[str]:
        """Revoke every token of the account; returns their accessors."""
        return self._revoke_where(lambda d, entry: entry["account"] == secret_id)
