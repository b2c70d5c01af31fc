"""Bringing a data directory to life: root key, store, services, and the
root account's credentials on first start.

Files in the data directory (all 0600, the directory 0700):
    root.key                  32 random bytes (unless KMS_ROOT_KEY is set)
    store.log, store.lock     the key store (kms.store)
    root-credentials.json     the root SecretId/SecretKey and token, written once
"""
import json
import os
from dataclasses import dataclass
from typing import Dict, Optional

from cryptography.exceptions import InvalidTag

from kms import errors
from kms.clock import Clock
from kms.rootkey import FileRootKey, RootKeyError, Wrapper, source_for
from kms.service.accounts import AccountService
from kms.service.keys import KeyService
from kms.service.tokens import TokenService
from kms.store import LogStore, Op

CANARY = b"kms root key check"


@dataclass
class Runtime:
    data_dir: str
    store: LogStore
    keys: KeyService
    accounts: AccountService
    clock: Clock
    root_source: str
    new_credentials: Optional[Dict[str, str]] = None


def _check_root_key(store: LogStore, wrapper: Wrapper) -> None:
    """The first start stores a value wrapped under the root key; later
    starts must unwrap it, so a wrong root key is refused up front instead
    of failing on every key later."""
    canary = store.get("meta", "root-canary")
    if canary is None:
        store.commit(lambda: [Op("put", "meta", "root-canary",
                                 wrapper.wrap("canary", "root", 1, CANARY))])
        return
    try:
        wrapper.unwrap("canary", "root", 1, canary)
    except InvalidTag:
        raise RootKeyError("the root key does not match this data directory "
                           "(it was initialised under another root key)") from None


def open_data_dir(data_dir: str, initialise: bool = True) -> Runtime:
    data_dir = os.path.abspath(data_dir)
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    source = source_for(data_dir)
    if isinstance(source, FileRootKey) and not os.path.exists(source.path):
        if os.path.exists(os.path.join(data_dir, "store.log")):
            raise RootKeyError(f"{source.path} is missing but {data_dir} holds a store; "
                               "without its root key no key can be used")
        if not initialise:
            raise RootKeyError(f"{data_dir} is not initialised (run kms server once)")
        source.create()
    wrapper = Wrapper(source.load())
    store = LogStore(data_dir)
    _check_root_key(store, wrapper)
    clock = Clock()
    runtime = Runtime(data_dir, store, KeyService(store, wrapper, clock),
                      AccountService(store, wrapper), clock, source.description)
    if initialise and runtime.accounts.root() is None:
        runtime.new_credentials = _create_root_account(runtime)
    return runtime


def _create_root_account(runtime: Runtime) -> Dict[str, str]:
    secret_id = os.environ.get("KMS_ROOT_SECRET_ID")
    secret_key = os.environ.get("KMS_ROOT_SECRET_KEY")
    if bool(secret_id) != bool(secret_key):
        raise errors.InvalidParameter("set both KMS_ROOT_SECRET_ID and KMS_ROOT_SECRET_KEY, or neither")
    creds = runtime.accounts.create("root", "root", secret_id, secret_key)
    root_token = os.environ.get("KMS_ROOT_TOKEN")
    creds["token"] = TokenService(runtime.store, runtime.clock).create(
        creds["secret_id"], token=root_token)["token"]
    path = os.path.join(runtime.data_dir, "root-credentials.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"SecretId": creds["secret_id"], "SecretKey": creds["secret_key"],
                   "Token": creds["token"]}, f)
        f.write("\n")
    return creds
