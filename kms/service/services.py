"""Every service over one store, made once per process: the adapters and
the scheduler are handed these, and none makes services of its own."""
from typing import Dict, List

from kms.service.accounts import AccountService
from kms.service.asymmetric import AsymmetricService
from kms.service.crypto import Blobs, Crypto
from kms.service.imports import ImportService
from kms.service.keys import KeyService
from kms.service.policies import PolicyService
from kms.service.tokens import TokenService
from kms.service.transit import TransitExtras, TransitService
from kms.service.transit_import import TransitImports


class Services:
    def __init__(self, keys: KeyService, accounts: AccountService) -> None:
        self.keys = keys
        self.accounts = accounts
        self.store = keys.store
        self.clock = keys.clock
        self.tokens = TokenService(keys.store, keys.clock)
        self.policies = PolicyService(keys.store)
        self.imports = ImportService(keys)
        self.transit = TransitService(keys)
        self.extras = TransitExtras(self.transit)
        self.transit_imports = TransitImports(self.transit)
        self.crypto = Crypto(keys, self.policies, self.transit.record)
        self.blobs = Blobs(keys, self.crypto)
        self.asymmetric = AsymmetricService(keys)

    def run_due(self) -> Dict[str, List[str]]:
        """Everything time makes due: rotations (scheduled and transit's
        auto-rotation), deletions at the end of their window, imported
        material past its expiry."""
        done = self.keys.run_due()
        done["expired"] = self.imports.expire_due()
        done["rotated"] += self.extras.rotate_due()
        return done
