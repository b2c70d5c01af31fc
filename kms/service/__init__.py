"""kms.service: the one service layer every protocol adapter calls.
Imports kms.keys, kms.store, kms.aead, kms.rootkey, kms.clock, kms.errors;
never HTTP code."""
from kms.service.keys import KeyService

__all__ = ["KeyService"]
