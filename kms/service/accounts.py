"""Accounts that may call the service: their SecretId/SecretKey pairs.

The SecretKey must be recoverable to check HMAC signatures, so it is stored
wrapped under the root key (bound to its SecretId), like key material.
Records: account / <SecretId> -> {"secret_id", "wrapped", "kind", "name", "uin"}.
kind is "root", "user" (a sub-account) or "service" (owns service-managed keys).
Names are unique: tokens, policies and service-owned keys find accounts by
name, so two accounts of one name would be confused with each other.

prepare() gives the account's Build (kms.store.staged), so an account can be
committed in one record with other changes (the root account with its first
token).
"""
import hashlib
import hmac
import os
import secrets
from typing import Any, Dict, List, Optional, Tuple, cast

from kms import errors
from kms.rootkey import Wrapper
from kms.service.keys import ALIAS_RE
from kms.store import Build, LogStore, Op, Staged, commit_together

KINDS = ("root", "user", "service")
NAME_MAX = 128


def new_secret_id() -> str:
    return "AKID" + secrets.token_hex(16)


def new_secret_key() -> str:
    return secrets.token_urlsafe(30)


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > NAME_MAX \
            or not name.isprintable() or name.strip() != name:
        raise errors.InvalidParameter(f"an account name needs 1 to {NAME_MAX} printable "
                                      "characters, without leading or trailing blanks")
    # A service's keys are found through the alias service/NAME.
    if kind == "service" and not ALIAS_RE.match(name):
        raise errors.InvalidParameter("a service account name must be a valid key alias: "
                                      "letters, digits, _ and -, at most 60, starting "
                                      "with a letter or digit")


class AccountService:
    def __init__(self, store: LogStore, wrapper: Wrapper) -> None:
        self.store = store
        self.wrapper = wrapper
        self._secrets: Dict[str, str] = {}
        store.listeners.append(self._forget)

    def _forget(self, op: Op) -> None:
        if op.op == "reset":
            self._secrets.clear()
        elif op.namespace == "account":
            self._secrets.pop(op.id, None)

    def prepare(self, kind: str, name: str, secret_id: Optional[str] = None,
                secret_key: Optional[str] = None) -> Tuple[Dict[str, str], Build]:
        """Validate and generate now; the Build checks what depends on the
        store (SecretId, name, a second root) when it runs in the commit.
        Returns ({"secret_id", "secret_key"}, build)."""
        if kind not in KINDS:
            raise errors.InvalidParameter(f"account kind must be one of {', '.join(KINDS)}")
        _check_name(kind, name)
        secret_id = secret_id or new_secret_id()
        secret_key = secret_key or new_secret_key()
        if not secret_id.isprintable() or " " in secret_id or not secret_key or secret_key.strip() != secret_key:
            raise errors.InvalidParameter("SecretId and SecretKey must be non-empty, without blanks")
        record = {"secret_id": secret_id, "kind": kind, "name": name,
                  "uin": int.from_bytes(os.urandom(4), "big") if kind != "root" else 1,
                  "wrapped": self.wrapper.wrap("account", secret_id, 1, secret_key.encode())}

        def build(staged: Staged) -> List[Op]:
            accounts = staged.items("account")
            if secret_id in accounts:
                raise errors.InvalidParameter(f"an account with SecretId {secret_id} exists")
            if kind == "root" and any(r["kind"] == "root" for r in accounts.values()):
                raise errors.InvalidParameter("a root account exists already")
            if any(r["name"] == name for r in accounts.values()):
                raise errors.InvalidParameter(f"an account named {name!r} exists")
            return [Op("put", "account", secret_id, record)]

        return {"secret_id": secret_id, "secret_key": secret_key}, build

    def create(self, kind: str, name: str, secret_id: Optional[str] = None,
               secret_key: Optional[str] = None) -> Dict[str, str]:
        """Returns {"secret_id", "secret_key"}: the only time the key is shown."""
        creds, build = self.prepare(kind, name, secret_id, secret_key)
        commit_together(self.store, [build])
        return creds

    def get(self, secret_id: str) -> Optional[Dict[str, Any]]:
        return cast(Optional[Dict[str, Any]], self.store.get("account", secret_id))

    def root(self) -> Optional[Dict[str, Any]]:
        for record in self.store.items("account").values():
            if record["kind"] == "root":
                return cast(Dict[str, Any], record)
        return None

    def resolve(self, name_or_secret_id: str) -> Dict[str, Any]:
        """The one account with this SecretId or name (older stores may
        hold two of one name: then only the SecretId will do)."""
        matches = [r for r in self.store.items("account").values()
                   if name_or_secret_id in (r["name"], r["secret_id"])]
        if len(matches) != 1:
            raise errors.InvalidParameter(f"{name_or_secret_id!r} names {len(matches)} accounts; "
                                          "give its SecretId")
        return cast(Dict[str, Any], matches[0])

    def secret_key(self, secret_id: str) -> Optional[str]:
        """For signature checks only; cached unwrapped in this process."""
        cached = self._secrets.get(secret_id)
        if cached is None:
            record = self.store.get("account", secret_id)
            if record is None:
                return None
            cached = self.wrapper.unwrap("account", secret_id, 1, record["wrapped"]).decode()
            self._secrets[secret_id] = cached
        return cached

    def check_secret(self, secret_id: str, secret_key: str) -> Optional[Dict[str, Any]]:
        """The account if secret_key is its SecretKey (compared in constant
        time), else None; an unknown SecretId costs the same compare."""
        record = self.get(secret_id) if secret_id.isprintable() and len(secret_id) <= 128 else None
        known = self.secret_key(secret_id) if record is not None else None
        matched = hmac.compare_digest((known or "\0" * 40).encode(), secret_key.encode())
        return record if matched and known is not None else None

    @staticmethod
    def fingerprint(record: Dict[str, Any]) -> str:
        """Names the account's current SecretKey without revealing it: it
        changes when the secret does (sessions signed in with the old one end)."""
        return hashlib.sha256(record["wrapped"]).hexdigest()[:32]

    def new_secret(self, secret_id: str, revoke_tokens: bool = False) -> Tuple[str, int]:
        """A new SecretKey for a sub-account or service account (the old one
        stops working at once), and with revoke_tokens its tokens revoked in
        the same commit (a leaked credential is usually not alone). Returns
        (the SecretKey, shown only this once; the number of tokens revoked)."""
        secret_key = new_secret_key()
        wrapped = self.wrapper.wrap("account", secret_id, 1, secret_key.encode())
        revoked: List[str] = []

        def build() -> List[Op]:
            record = self._not_root(secret_id, "the root account's secret is set when the data directory is made")
            revoked[:] = [digest for digest, entry in self.store.items("token").items()
                          if revoke_tokens and entry["account"] == secret_id]
            return [Op("put", "account", secret_id, dict(record, wrapped=wrapped)),
                    *(Op("del", "token", digest) for digest in revoked)]

        self.store.commit(build)
        return secret_key, len(revoked)

    def _not_root(self, secret_id: str, refusal: str) -> Dict[str, Any]:
        """The account, for a change the root account refuses (refusal)."""
        record = self.get(secret_id)
        if record is None:
            raise errors.InvalidParameter(f"no account with SecretId {secret_id}")
        if record["kind"] == "root":
            raise errors.InvalidParameter(refusal)
        return record

    def delete(self, secret_id: str) -> None:
        def build() -> List[Op]:
            self._not_root(secret_id, "the root account cannot be deleted")
            # Its tokens go in the same record: a dead account's token
            # records would otherwise linger in the store and in listings.
            tokens = [Op("del", "token", digest)
                      for digest, entry in self.store.items("token").items()
                      if entry["account"] == secret_id]
            return [Op("del", "account", secret_id), *tokens]

        self.store.commit(build)

    def listing(self) -> List[Dict[str, Any]]:
        return [{"SecretId": r["secret_id"], "Kind": r["kind"], "Name": r["name"],
                 "Policies": r.get("policies", [])}
                for r in self.store.items("account").values()]
