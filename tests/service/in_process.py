"""The services of one data directory, built in-process the way `kms server`
builds them (kms.server.open_data_dir), so the service tests call the rules
directly: no server, no HTTP.

    def test_x(services): services.keys.create_key("a")

Keys in each lifecycle state are made by the real transitions (key_in),
and `unchanged(services)` asserts that a refused call stored nothing.
"""
import copy
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from kms.clock import Clock
from kms.server import RootCredentials, Runtime, open_data_dir
from kms.service.accounts import AccountService
from kms.service.asymmetric import AsymmetricService
from kms.service.crypto import Blobs
from kms.service.imports import ImportService
from kms.service.keys import ARCHIVED, DISABLED, ENABLED, PENDING_DELETE, PENDING_IMPORT, KeyService
from kms.service.policies import PolicyService
from kms.service.tokens import TokenService
from kms.store import LogStore

ROOT_ID = "AKIDservicetestroot000000000000001"
ROOT_KEY = "service-test-root-secret-0123456789"
ROOT_TOKEN = "kms.service-test-root-token-0123456789"


@dataclass
class Services:
    runtime: Runtime
    keys: KeyService
    accounts: AccountService
    imports: ImportService
    policies: PolicyService
    tokens: TokenService
    blobs: Blobs
    store: LogStore
    clock: Clock
    asymmetric: AsymmetricService

    def advance(self, seconds: float) -> None:
        """Move the service clock forward (as the test clock does)."""
        self.clock.offset += seconds


@pytest.fixture(name="services")
def services_fixture(tmp_path: Any) -> Iterator[Services]:
    runtime = open_data_dir(str(tmp_path / "data"), given=RootCredentials(ROOT_ID, ROOT_KEY, ROOT_TOKEN))
    try:
        made = runtime.services
        yield Services(runtime, made.keys, made.accounts, made.imports, made.policies, made.tokens,
                       made.blobs, runtime.store, runtime.clock, made.asymmetric)
    finally:
        runtime.store.close()


def stored(services: Services) -> Tuple[Dict[str, Any], bytes]:
    """What the store holds: its records, and the log's bytes on disk."""
    with open(services.store.path, "rb") as f:
        return copy.deepcopy(services.store.state), f.read()


@contextmanager
def unchanged(services: Services) -> Iterator[None]:
    """The block (a refused call) leaves the store as it found it."""
    before = stored(services)
    yield
    services.store.refresh()
    assert stored(services) == before, "a refused call changed the store"


# ---- imported key material -------------------------------------------------------


def wrap_for_import(services: Services, key_id: str, material: bytes) -> Tuple[str, bytes]:
    """GetParametersForImport, then the material wrapped as a client
    would wrap it: (import token, encrypted material)."""
    issued = services.imports.parameters(key_id, "RSAES_OAEP_SHA_256", "RSA_2048")
    public = serialization.load_der_public_key(issued["public_key_der"])
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    return issued["token"], public.encrypt(material, oaep)  # type: ignore[union-attr]


def import_material(services: Services, key_id: str, material: bytes,
                    valid_to: Optional[int] = None) -> None:
    token, encrypted = wrap_for_import(services, key_id, material)
    services.imports.import_material(key_id, token, encrypted, valid_to)


# ---- keys in every state ------------------------------------------------------------

STATES = (ENABLED, DISABLED, PENDING_DELETE, PENDING_IMPORT, ARCHIVED)
_aliases = iter(range(10**6))


def new_alias() -> str:
    return f"key-{next(_aliases)}"


def key_in(services: Services, state: str, external: bool = False) -> Tuple[str, str]:
    """A key brought into `state` by the service's own transitions, and a
    blob it encrypted while it was Enabled: (key id, blob). PendingImport
    is an external key whose material was imported, used, then deleted."""
    keys = services.keys
    key_id = keys.create_key(new_alias(), external=external or state == PENDING_IMPORT)["id"]
    if external or state == PENDING_IMPORT:
        import_material(services, key_id, os.urandom(32))
    blob = services.blobs.encrypt(key_id, b"made while enabled")
    if state == DISABLED:
        keys.disable(key_id)
    elif state == PENDING_DELETE:
        keys.disable(key_id)
        keys.schedule_deletion(key_id, 7)
    elif state == ARCHIVED:
        keys.archive(key_id)
    elif state == PENDING_IMPORT:
        services.imports.delete_material(key_id)
    assert keys.describe(key_id)["state"] == state
    return key_id, blob

