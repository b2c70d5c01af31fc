"""Key types and what each can do: the one table every path asks.

A key's type is a transit type name ("aes256-gcm96", "rsa-2048", ...). Keys
made through transit record it in their settings; any other key (the
Tencent API, a service's managed key) is AES-GCM of its material's size.
The settings a key carries beyond its type (derivation, minimum versions,
export flags) live in the same record, with the defaults below.
"""
from dataclasses import dataclass, replace
from typing import Any, Dict

from kms.keys.material import SYMMETRIC_KINDS

USAGE_SYMMETRIC = "ENCRYPT_DECRYPT"
USAGE_MAC = "GENERATE_VERIFY_MAC"  # transit's hmac keys (the Tencent API has no MAC keys)
HMAC_KEY_BYTES = (32, 512)  # key_size's range (Vault's)
# The mark of a key made through transit (create, upsert, restore): it does
# what its type can do, whatever usage the Tencent API shows it under.
MANAGED_BY_TRANSIT = "transit"


@dataclass(frozen=True)
class KeyType:
    name: str
    kind: str  # the material's kind (kms.keys.material)
    size: int  # bytes of symmetric material; 0 for asymmetric keys
    encrypts: bool
    signs: bool
    derives: bool
    usage: str  # the CMK usage the Tencent API shows it under
    transit: bool = True  # a transit key type (OpenBao has no SM2)

    @property
    def asymmetric(self) -> bool:
        return self.kind not in SYMMETRIC_KINDS

    @property
    def blob_ready(self) -> bool:
        """Sealed into the Tencent CiphertextBlob (AES-GCM or SM4-GCM)."""
        return self.kind in ("aes", "sm4")

    @property
    def aes_gcm(self) -> bool:
        """AES-GCM material: sealed by the engine, usable by every API."""
        return self.kind == "aes"


KEY_TYPES: Dict[str, KeyType] = {t.name: t for t in (
    KeyType("aes256-gcm96", "aes", 32, True, False, True, USAGE_SYMMETRIC),
    KeyType("aes128-gcm96", "aes", 16, True, False, True, USAGE_SYMMETRIC),
    KeyType("chacha20-poly1305", "chacha", 32, True, False, True, USAGE_SYMMETRIC),
    KeyType("xchacha20-poly1305", "xchacha", 32, True, False, True, USAGE_SYMMETRIC),
    # SM4 CMKs (an SM server, kms server --symmetric-algorithm SM4): Tencent blobs only.
    KeyType("sm4-gcm96", "sm4", 16, True, False, False, USAGE_SYMMETRIC, transit=False),
    # HMAC only (hmac/ and verify/); key_size chooses its size (HMAC_KEY_BYTES).
    KeyType("hmac", "hmac", 32, False, False, False, USAGE_MAC),
    KeyType("ed25519", "ed25519", 32, False, True, False, "ASYMMETRIC_SIGN_VERIFY_ED25519"),
    KeyType("ecdsa-p256", "ecdsa-p256", 0, False, True, False, "ASYMMETRIC_SIGN_VERIFY_ECC"),
    KeyType("ecdsa-p384", "ecdsa-p384", 0, False, True, False, "ASYMMETRIC_SIGN_VERIFY_ECDSA384"),
    KeyType("ecdsa-p521", "ecdsa-p521", 0, False, True, False, "ASYMMETRIC_SIGN_VERIFY_ECDSA521"),
    KeyType("rsa-2048", "rsa-2048", 0, True, True, False, "ASYMMETRIC_DECRYPT_RSA_2048"),
    KeyType("rsa-3072", "rsa-3072", 0, True, True, False, "ASYMMETRIC_DECRYPT_RSA_3072"),
    KeyType("rsa-4096", "rsa-4096", 0, True, True, False, "ASYMMETRIC_DECRYPT_RSA_4096"),
    KeyType("sm2", "sm2", 0, True, True, False, "ASYMMETRIC_SIGN_VERIFY_SM2", transit=False),
)}


@dataclass(frozen=True)
class Usage:
    """A CMK usage (the Tencent key model): the type of its material and
    which of that type's operations a key of the usage may run. An RSA key
    made for signing cannot decrypt, and one made for decrypting cannot sign
    (spec/tencent-kms-api.md, 2.3 and 3.2)."""

    name: str
    key_type: str
    encrypts: bool
    signs: bool

    @property
    def asymmetric(self) -> bool:
        return KEY_TYPES[self.key_type].asymmetric


USAGE_TABLE: Dict[str, Usage] = {u.name: u for u in (
    Usage(USAGE_SYMMETRIC, "aes256-gcm96", True, False),
    Usage("ASYMMETRIC_DECRYPT_RSA_2048", "rsa-2048", True, False),
    Usage("ASYMMETRIC_SIGN_VERIFY_RSA_2048", "rsa-2048", False, True),
    Usage("ASYMMETRIC_SIGN_VERIFY_ECC", "ecdsa-p256", False, True),
    Usage("ASYMMETRIC_SIGN_VERIFY_ECDSA384", "ecdsa-p384", False, True),
    Usage("ASYMMETRIC_SIGN_VERIFY_ED25519", "ed25519", False, True),
    # Made by transit only: its other types, under usages of the same form.
    Usage("ASYMMETRIC_SIGN_VERIFY_ECDSA521", "ecdsa-p521", False, True),
    Usage("ASYMMETRIC_DECRYPT_RSA_3072", "rsa-3072", True, False),
    Usage("ASYMMETRIC_DECRYPT_RSA_4096", "rsa-4096", True, False),
    Usage(USAGE_MAC, "hmac", False, False),
    Usage("ASYMMETRIC_DECRYPT_SM2", "sm2", True, False),
    Usage("ASYMMETRIC_SIGN_VERIFY_SM2", "sm2", False, True),
)}
USAGES = frozenset(USAGE_TABLE)

DEFAULTS: Dict[str, Any] = {
    "type": "aes256-gcm96", "derived": False, "convergent_encryption": False,
    "exportable": False, "allow_plaintext_backup": False, "auto_rotate_period": 0,
    "deletion_allowed": False, "min_decryption_version": 1,
    "min_encryption_version": 0, "min_available_version": 0}


def settings(record: Dict[str, Any]) -> Dict[str, Any]:
    """A key's settings: what its record holds over the defaults, with the
    type of a key made outside transit read from its usage (and, for AES,
    its material's size)."""
    usage = USAGE_TABLE[record.get("usage", USAGE_SYMMETRIC)]
    made_type = usage.key_type
    if record.get("material_kind") == "sm4":
        made_type = "sm4-gcm96"
    elif not usage.asymmetric and record.get("material_bytes", 32) == 16:
        made_type = "aes128-gcm96"
    return {**DEFAULTS, "type": made_type, **record.get("transit", {})}


def key_type(record: Dict[str, Any]) -> KeyType:
    """What the key can do: its type's operations, narrowed to its usage's
    unless transit made it (transit's rsa-2048 both decrypts and signs)."""
    meta = KEY_TYPES[settings(record)["type"]]
    if record.get("managed_by") == MANAGED_BY_TRANSIT:
        return meta
    usage = USAGE_TABLE[record.get("usage", USAGE_SYMMETRIC)]
    return replace(meta, encrypts=meta.encrypts and usage.encrypts, signs=meta.signs and usage.signs)


def usage_of(record: Dict[str, Any]) -> Usage:
    return USAGE_TABLE[record.get("usage", USAGE_SYMMETRIC)]


def one_key_per_version(s: Dict[str, Any]) -> bool:
    """AES-GCM without derivation: every item under a version uses the same
    key, so the engine seals or opens them all in one batch call."""
    return KEY_TYPES[s["type"]].aes_gcm and not s["derived"]
