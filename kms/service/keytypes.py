"""Key types and what each can do: the one table every path asks.

A key's type is a transit type name ("aes256-gcm96", "rsa-2048", ...). Keys
made through transit record it in their settings; any other key (the
Tencent API, a service's managed key) is AES-GCM of its material's size.
The settings a key carries beyond its type (derivation, minimum versions,
export flags) live in the same record, with the defaults below.
"""
from dataclasses import dataclass
from typing import Any, Dict

USAGE_SYMMETRIC = "ENCRYPT_DECRYPT"


@dataclass(frozen=True)
class KeyType:
    name: str
    kind: str  # the material's kind (kms.keys.material)
    size: int  # bytes of symmetric material; 0 for asymmetric keys
    encrypts: bool
    signs: bool
    derives: bool
    usage: str  # the CMK usage the Tencent API shows it under

    @property
    def aes_gcm(self) -> bool:
        """AES-GCM material: sealed by the engine, usable by every API."""
        return self.kind == "aes"


KEY_TYPES: Dict[str, KeyType] = {t.name: t for t in (
    KeyType("aes256-gcm96", "aes", 32, True, False, True, USAGE_SYMMETRIC),
    KeyType("aes128-gcm96", "aes", 16, True, False, True, USAGE_SYMMETRIC),
    KeyType("chacha20-poly1305", "chacha", 32, True, False, True, USAGE_SYMMETRIC),
    KeyType("ed25519", "ed25519", 32, False, True, False, "ASYMMETRIC_SIGN_VERIFY_ED25519"),
    KeyType("ecdsa-p256", "ecdsa-p256", 0, False, True, False, "ASYMMETRIC_SIGN_VERIFY_ECC"),
    KeyType("rsa-2048", "rsa-2048", 0, True, True, False, "ASYMMETRIC_DECRYPT_RSA_2048"),
)}
USAGES = frozenset(t.usage for t in KEY_TYPES.values())

DEFAULTS: Dict[str, Any] = {
    "type": "aes256-gcm96", "derived": False, "convergent_encryption": False,
    "exportable": False, "allow_plaintext_backup": False, "auto_rotate_period": 0,
    "deletion_allowed": False, "min_decryption_version": 1,
    "min_encryption_version": 0, "min_available_version": 0}


def settings(record: Dict[str, Any]) -> Dict[str, Any]:
    """A key's settings: what its record holds over the defaults, with the
    type of a key made outside transit read from its material's size."""
    size_type = "aes128-gcm96" if record.get("material_bytes", 32) == 16 else "aes256-gcm96"
    return {**DEFAULTS, "type": size_type, **record.get("transit", {})}


def key_type(record: Dict[str, Any]) -> KeyType:
    return KEY_TYPES[settings(record)["type"]]


def one_key_per_version(s: Dict[str, Any]) -> bool:
    """AES-GCM without derivation: every item under a version uses the same
    key, so the engine seals or opens them all in one batch call."""
    return KEY_TYPES[s["type"]].aes_gcm and not s["derived"]
