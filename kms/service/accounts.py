"""Accounts that may call the service: their SecretId/SecretKey pairs.

The SecretKey must be recoverable to check HMAC signatures, so it is stored
wrapped under the root key (bound to its SecretId), like key material.
Records: account / <SecretId> -> {"secret_id", "wrapped", "kind", "name", "uin"}.
kind is "root", "user" (a sub-account) or "service" (owns service-managed keys).
"""
import os
import secrets
from typing import Any, Dict, Optional

from kms import errors
from kms.rootkey import Wrapper
from kms.store import LogStore, Op

KINDS = ("root", "user", "service")


def new_secret_id() -> str:
    return "AKID" + secrets.token_hex(16)


def new_secret_key() -> str:
    return secrets.token_urlsafe(30)


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

    def create(self, kind: str, name: str, secret_id: Optional[str] = None,
               secret_key: Optional[str] = None) -> Dict[str, str]:
        """Returns {"secret_id", "secret_key"}: the only time the key is shown."""
        if kind not in KINDS:
            raise errors.InvalidParameter(f"account kind must be one of {', '.join(KINDS)}")
        secret_id = secret_id or new_secret_id()
        secret_key = secret_key or new_secret_key()
        if not secret_id.isprintable() or " " in secret_id or not secret_key or secret_key.strip() != secret_key:
            raise errors.InvalidParameter("SecretId and SecretKey must be non-empty, without blanks")

        def build() -> list:
            if self.store.get("account", secret_id) is not None:
                raise errors.InvalidParameter(f"an account with SecretId {secret_id} exists")
            if kind == "root" and self.root() is not None:
                raise errors.InvalidParameter("a root account exists already")
            record = {"secret_id": secret_id, "kind": kind, "name": name,
                      "uin": int.from_bytes(os.urandom(4), "big") if kind != "root" else 1,
                      "wrapped": self.wrapper.wrap("account", secret_id, 1, secret_key.encode())}
            return [Op("put", "account", secret_id, record)]

        self.store.commit(build)
        return {"secret_id": secret_id, "secret_key": secret_key}

    def get(self, secret_id: str) -> Optional[Dict[str, Any]]:
        return self.store.get("account", secret_id)

    def root(self) -> Optional[Dict[str, Any]]:
        for record in self.store.items("account").values():
            if record["kind"] == "root":
                return record
        return None

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

    def delete(self, secret_id: str) -> None:
        def build() -> list:
            record = self.store.get("account", secret_id)
            if record is None:
                raise errors.InvalidParameter(f"no account with SecretId {secret_id}")
            if record["kind"] == "root":
                raise errors.InvalidParameter("the root account cannot be deleted")
            return [Op("del", "account", secret_id)]

        self.store.commit(build)

    def listing(self) -> list:
        return [{"SecretId": r["secret_id"], "Kind": r["kind"], "Name": r["name"],
                 "Policies": r.get("policies", [])}
                for r in self.store.items("account").values()]
