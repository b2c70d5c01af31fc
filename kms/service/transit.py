"""Vault transit semantics over the one key store (spec/vault-transit-api.md).

A transit key is a CMK whose alias is the transit name: the same versions,
states and audit records in both APIs. Its Vault settings live in the CMK
record under "transit" (absent: the defaults, kms.service.keytypes).
Encryption, decryption and rewrapping go through kms.service.crypto like
every other API's; this module holds the rest of transit: key management,
signatures, HMACs, export, backup and restore.
"""
import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from kms import b64text, errors
from kms.codecs import transit_text
from kms.keys import asymmetric
from kms.keys import material as materials
from kms.service.crypto import Failure, Item, Plan, decryption_version, encryption_version, plan_encrypt
from kms.service.keys import (ALIAS_RE, ENABLED, PENDING_DELETE, SERVICE_ALIAS_PREFIX, KeyService, check_state,
                              check_unbound)
from kms.service.keytypes import (DEFAULTS, HMAC_KEY_BYTES, KEY_TYPES, MANAGED_BY_TRANSIT, USAGES, KeyType,
                                  key_type)
from kms.service.keytypes import settings as key_settings
from kms.store import Op

PREFIX = transit_text.PREFIX
# One naming rule for a key in both APIs: a transit name is a Tencent alias
# (kms.service.keys.ALIAS_RE), so every key made here can be named there.
NAME_RULE = "1 to 60 characters of A-Z a-z 0-9 - _, starting with a letter or digit"
# Vault's own rule, which transit followed before: a backup may carry such a
# name (it can still be restored under a name of today's rule).
VAULT_NAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-.@]*[A-Za-z0-9_])?\Z")
# Transit's own lifecycle (export, immediate deletion, trimming versions)
# belongs to keys made through transit, marked so in their record. A key made
# any other way (the Tencent API, a service's managed key) keeps its
# guarantees whatever API touches it: its material never leaves, and it
# goes only through Disabled and a 7-30 day deletion window.
MANAGED_BY = MANAGED_BY_TRANSIT
KMS_GUARANTEED = ("this key was not created through transit; its material cannot be made exportable "
                  "and it can be deleted only by scheduling its deletion (ScheduleKeyDeletion)")
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
MISSING_CONTEXT = ("missing 'context' for key derivation; the key was created using a derived key, "
                   "which means additional, per-request information must be included in order "
                   "to perform operations with the key")
# The OpenBao wording of each item failure of encrypt, decrypt and rewrap.
FAILURE_TEXT: Dict[Failure, str] = {
    Failure.VERSION_NEGATIVE: "requested version for encryption is negative",
    Failure.VERSION_ABOVE_LATEST: "requested version for encryption is higher than the latest key version",
    Failure.VERSION_BELOW_MIN_ENCRYPTION:
        "requested version for encryption is less than the minimum encryption key version",
    Failure.VERSION_RETIRED: "no such key version",
    Failure.CIPHERTEXT_TOO_NEW: "invalid ciphertext: version is too new",
    Failure.CIPHERTEXT_TOO_OLD: TOO_OLD,
    Failure.VERSION_GONE: "the key version of this ciphertext no longer exists",
    Failure.MISSING_CONTEXT: MISSING_CONTEXT,
    Failure.AAD_NOT_SUPPORTED: "'[0].associated_data' provided for non-AEAD cipher suite rsa",
    Failure.PLAINTEXT_TOO_LONG: "plaintext too long for the key's RSA-OAEP (SHA-256): at most 190, 318 "
                                "or 446 bytes for rsa-2048, rsa-3072, rsa-4096",
    Failure.TOO_SHORT: "invalid ciphertext length",
    Failure.AUTHENTICATION: "cipher: message authentication failed",
    Failure.RSA_DECRYPTION: "failed to RSA decrypt the ciphertext",
}


def failure_text(why: Any) -> str:
    """An item's failure as OpenBao words it (a reader's text as it is)."""
    return FAILURE_TEXT[why] if isinstance(why, Failure) else str(why)


class TransitError(errors.InvalidRequest):
    """A user error with the exact text OpenBao answers (HTTP 400)."""

    code = "transit_error"


def b64decode(value: Optional[str], what: str = "input") -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):  # the adapters' parameter readers give strings
        raise TransitError(f"{what} must be a string")
    value = value.rstrip("\r\n")
    decoded = b64text.decode(value)
    if decoded is None:
        # Go's decoder (OpenBao) names the first bad byte; so do we.
        raise TransitError(f"illegal base64 data at input byte {b64text.first_bad(value)}")
    return decoded


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not ALIAS_RE.match(name):
        raise TransitError(f"invalid key name: a key name is {NAME_RULE}")
    return name


def _served(record: Dict[str, Any]) -> bool:
    """Whether transit serves a key: not pending deletion, of a known usage,
    and of a transit type (an SM2 or SM4 CMK has none)."""
    return (record["state"] != PENDING_DELETE and record["usage"] in USAGES
            and KEY_TYPES[key_settings(record)["type"]].transit)


class TransitService:
    def __init__(self, keys: KeyService) -> None:
        self.keys = keys
        self.store = keys.store

    # ---- keys --------------------------------------------------------------

    def record(self, name: str) -> Optional[Dict[str, Any]]:
        holder = self.store.get("alias", name)
        if holder is None:
            return None
        record: Optional[Dict[str, Any]] = self.store.get("key", holder)
        return record if record is not None and _served(record) else None

    @staticmethod
    def transit_lifecycle(record: Dict[str, Any]) -> bool:
        """Made through transit (create, upsert or restore): the only keys
        transit may export, back up, trim or delete at once."""
        return record.get("managed_by") == MANAGED_BY

    def require_transit_lifecycle(self, record: Dict[str, Any]) -> None:
        if not self.transit_lifecycle(record):
            raise TransitError(KMS_GUARANTEED)

    def create(self, name: str, key_type: str = "aes256-gcm96", derived: bool = False,
               convergent: bool = False, exportable: bool = False,
               allow_plaintext_backup: bool = False, auto_rotate_period: int = 0,
               creator: str = "root", key_size: Optional[int] = None) -> Dict[str, Any]:
        """Idempotent: an existing key is returned unchanged. key_size: an
        hmac key's bytes (HMAC_KEY_BYTES), valid for no other type."""
        check_name(name)
        existing = self.record(name)
        if existing is not None:
            return existing
        settings = self.new_settings(key_type, derived, convergent, exportable,
                                     allow_plaintext_backup, auto_rotate_period)
        meta = KEY_TYPES[key_type]
        size = meta.size
        if key_size is not None:
            if meta.kind != "hmac":
                raise TransitError(f"key_size is not valid for algorithm {key_type}")
            if not HMAC_KEY_BYTES[0] <= key_size <= HMAC_KEY_BYTES[1]:
                raise TransitError(f"invalid key_size {key_size}: HMAC keys are {HMAC_KEY_BYTES[0]} to "
                                   f"{HMAC_KEY_BYTES[1]} bytes")
            size = key_size
        try:
            return self.keys.create_record(name, "transit key", meta.usage, False, {}, owner="user",
                                     creator=creator, material_bytes=size,
                                     extra={"transit": settings, "material_kind": meta.kind,
                                            "managed_by": MANAGED_BY})
        except errors.AliasExists:  # created concurrently: return that one
            record = self.record(name)
            if record is None:
                raise
            return record

    @staticmethod
    def new_settings(key_type: str, derived: bool = False, convergent: bool = False,
                     exportable: bool = False, allow_plaintext_backup: bool = False,
                     auto_rotate_period: int = 0) -> Dict[str, Any]:
        """A new key's transit settings, once they fit together."""
        if key_type not in KEY_TYPES or not KEY_TYPES[key_type].transit:
            raise TransitError(f"unknown key type {key_type}")
        meta = KEY_TYPES[key_type]
        if derived and not meta.derives:
            raise TransitError(f"key derivation is not supported for key type {key_type}")
        if convergent and not derived:
            raise TransitError("convergent encryption requires derivation to be enabled")
        if auto_rotate_period and auto_rotate_period < 3600:
            raise TransitError("auto rotate period must be 0 to disable or at least an hour")
        return {"type": key_type, "derived": derived, "convergent_encryption": convergent,
                "exportable": exportable, "allow_plaintext_backup": allow_plaintext_backup,
                "auto_rotate_period": auto_rotate_period}

    def upsert_for_encrypt(self, name: str, items: Sequence[Item], key_type: str, derived: bool,
                           convergent: bool, creator: str,
                           before_create: Callable[[], None]) -> Tuple[Optional[Dict[str, Any]], Plan]:
        """Vault's upsert: a missing key created by its first encryption, as
        one step that either happens or does not. The items are planned
        against the key that would be made (type, derivation, versions)
        before anything is stored, and the key is created only when at
        least one item will be sealed. Vault derives when the first use
        has a context. Returns the key (None: nothing was created) and the
        plan for the key that would be made."""
        check_name(name)
        settings = {**DEFAULTS, **self.new_settings(key_type, derived, convergent)}
        would_be = {"id": "", "state": ENABLED, "latest": 1, "transit": settings}
        plan = plan_encrypt(would_be, items)
        if len(plan.failures) == len(items):
            return None, plan
        before_create()
        return self.create(name, key_type, derived, convergent, creator=creator), plan

    def describe(self, record: Dict[str, Any]) -> Dict[str, Any]:
        s = key_settings(record)
        meta = key_type(record)
        versions: Dict[str, Any] = {}
        for v in range(max(s["min_decryption_version"], 1), record["latest"] + 1):
            entry = self.store.get("ver", f"{record['id']}/{v}")
            if entry is None:
                continue
            if meta.asymmetric:
                versions[str(v)] = {"name": PUBLIC_NAMES[meta.kind],
                                    "public_key": self.public_key(record, v),
                                    "creation_time": _rfc3339(entry["created"]),
                                    "certificate_chain": ""}
            else:
                versions[str(v)] = entry["created"]
        data = {
            "name": record["alias"], "type": s["type"], "latest_version": record["latest"],
            "min_decryption_version": s["min_decryption_version"],
            "min_encryption_version": s["min_encryption_version"],
            "min_available_version": s["min_available_version"],
            "deletion_allowed": s["deletion_allowed"], "derived": s["derived"],
            "exportable": s["exportable"], "allow_plaintext_backup": s["allow_plaintext_backup"],
            "auto_rotate_period": s["auto_rotate_period"], "supports_encryption": meta.encrypts,
            "supports_decryption": meta.encrypts, "supports_signing": meta.signs,
            "supports_derivation": meta.derives,
            "imported_key": record["origin"] != "TENCENT_KMS", "soft_deleted": bool(record.get("soft_deleted")),
            "keys": versions,
        }
        if s["derived"]:
            data["kdf"] = "hkdf_sha256"
            data["convergent_encryption"] = s["convergent_encryption"]
            if s["convergent_encryption"]:
                data["convergent_encryption_version"] = -1
        return data

    def names(self) -> List[str]:
        """The keys transit serves. Service-managed keys (service/NAME) are
        left out: no transit or bulk path can name them."""
        return sorted(r["alias"] for r in self.store.items("key").values()
                      if _served(r) and not r["alias"].startswith(SERVICE_ALIAS_PREFIX))

    def configure(self, name: str, params: Dict[str, Any]) -> Tuple[Dict[str, Any], List[str]]:
        """Apply the settings given (typed: integers, booleans, seconds), all
        or nothing. Returns the record and any warnings."""
        if self.record(name) is None:
            raise TransitError(f"no existing key named {name} could be found")
        warnings: List[str] = []

        def mutate(record: Dict[str, Any]) -> List[Op]:
            s = key_settings(record)
            new = dict(s)
            if "min_decryption_version" in params:
                value = int(params["min_decryption_version"])
                if value < 0:
                    raise TransitError("min decryption version must not be negative")
                if value == 0:
                    value = 1
                    warnings.append("since Vault 0.3 (prior to the OpenBao fork), transit key numbering "
                                    "starts at 1; forcing minimum to 1")
                if value > record["latest"]:
                    raise TransitError(f"cannot set min decryption version of {value}, latest key version "
                                       f"is {record['latest']}")
                if value < s["min_available_version"]:
                    raise TransitError("min decryption version should not be less then min available version")
                new["min_decryption_version"] = value
            if "min_encryption_version" in params:
                value = int(params["min_encryption_version"])
                if value < 0 or value > record["latest"]:
                    raise TransitError(f"cannot set min encryption version of {value}, latest key version "
                                       f"is {record['latest']}")
                new["min_encryption_version"] = value
            if new["min_encryption_version"] and new["min_encryption_version"] < new["min_decryption_version"]:
                raise TransitError(
                    "cannot set min encryption/decryption values; min encryption version of "
                    f"{new['min_encryption_version']} must be greater than or equal to min decryption "
                    f"version of {new['min_decryption_version']}")
            for flag in ("deletion_allowed",):
                if flag in params:
                    new[flag] = bool(params[flag])
            for flag in ("exportable", "allow_plaintext_backup"):  # one way: on stays on
                if flag in params and params[flag]:
                    new[flag] = True
            if not self.transit_lifecycle(record) and any(
                    new[f] for f in ("deletion_allowed", "exportable", "allow_plaintext_backup")):
                raise TransitError(KMS_GUARANTEED)
            if "auto_rotate_period" in params:
                period = int(params["auto_rotate_period"])
                if period and period < 3600:
                    raise TransitError("auto rotate period must be 0 to disable or at least an hour")
                new["auto_rotate_period"] = period
            record["transit"] = {k: v for k, v in new.items()}
            return []

        record = self.keys.change(self.record(name)["id"], "update", mutate)  # type: ignore[index]
        return record, warnings

    def rotate(self, name: str) -> Dict[str, Any]:
        record = self.record(name)
        if record is None:
            raise TransitError("key not found")
        self.keys.rotate(record["id"], manual_rules=False)
        return self.keys.describe(record["id"])

    def delete(self, name: str) -> None:
        record = self.record(name)
        if record is None:
            raise TransitError(f"error deleting policy {name}: could not delete key; not found")
        key_id = record["id"]

        def build() -> List[Op]:
            current = self.store.get("key", key_id)
            if current is None:
                return []
            # Checked on the latest state, under the store lock.
            if not self.transit_lifecycle(current):
                raise TransitError(f"error deleting policy {name}: {KMS_GUARANTEED}")
            if not key_settings(current)["deletion_allowed"]:
                raise TransitError(f"error deleting policy {name}: deletion is not allowed for this key")
            check_unbound(current)
            ops = [Op("del", "key", key_id), Op("del", "alias", current["alias"])]
            return ops + [Op("del", "ver", f"{key_id}/{v}") for v in range(1, current["latest"] + 1)]

        self.store.commit(build, compact=True)  # the wrapped material leaves the disk

    def soft_delete(self, name: str, restore: bool = False) -> None:
        """OpenBao's soft delete: the key stays, every use is refused until
        it is restored. A missing key is no error (as OpenBao answers). Only
        keys transit made; a bound key cannot be made unusable."""
        record = self.record(name)
        if record is None:
            if restore:
                raise TransitError("key not found")
            return
        self.require_transit_lifecycle(record)

        def mutate(current: Dict[str, Any]) -> List[Op]:
            if not restore:
                check_unbound(current)
            current["soft_deleted"] = not restore
            return []

        self.keys.change(record["id"], "update", mutate)

    # ---- asymmetric keys -----------------------------------------------------

    def _private(self, record: Dict[str, Any], version: int) -> Any:
        return self.keys.private_key(record["id"], version, key_type(record).kind)

    def public_key(self, record: Dict[str, Any], version: int) -> str:
        """Raw base64 for ed25519, a PEM SubjectPublicKeyInfo block otherwise."""
        public = self._private(record, version).public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            return b64(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
        return str(public.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode())

    def _signing(self, record: Dict[str, Any]) -> Tuple[Dict[str, Any], str]:
        s = key_settings(record)
        meta = key_type(record)
        if not meta.signs:
            raise TransitError(f"key type {s['type']} does not support signing")
        return s, meta.kind

    @staticmethod
    def versioned(record: Dict[str, Any], s: Dict[str, Any], text: Any,
                  what: str = "ciphertext", too_old: str = TOO_OLD) -> Tuple[int, str]:
        """Split a signature's or HMAC's "vault:v<N>:<body>" into a checked
        version (the rule ciphertexts follow: kms.service.crypto) and body."""
        parts = transit_text.split(text) if isinstance(text, str) else transit_text.NO_PREFIX
        if isinstance(parts, str):
            raise TransitError(f"invalid {what}: {parts}")
        version = decryption_version(record, s, parts[0])
        if version is Failure.CIPHERTEXT_TOO_NEW:
            raise TransitError(f"invalid {what}: version is too new")
        if isinstance(version, Failure):
            raise TransitError(too_old)
        return version, parts[1]

    def sign(self, record: Dict[str, Any], data: bytes, hash_algorithm: Optional[str],
             key_version: Optional[int], prehashed: bool = False, signature_algorithm: Optional[str] = None,
             marshaling: Optional[str] = None, salt_length: Any = None) -> str:
        check_state(record, "encrypt")
        s, kind = self._signing(record)
        version = encryption_version(record, s, key_version or 0)
        if isinstance(version, Failure):
            raise TransitError(FAILURE_TEXT[version])
        private = self._private(record, version)
        if kind == "ed25519":
            if prehashed:
                raise TransitError("ed25519 signatures over a prehashed input are not supported")
            return f"{PREFIX}{version}:{b64(private.sign(data))}"
        algorithm = _hash(hash_algorithm)
        if prehashed and len(data) != algorithm.digest_size:
            raise TransitError(f"a prehashed input must be a {hash_algorithm or 'sha2-256'} digest "
                               f"of {algorithm.digest_size} bytes, not {len(data)}")
        hashed = data if prehashed else asymmetric.digest_of(algorithm, data)
        rsa_padding = (None if kind in asymmetric.CURVES
                       else _rsa_padding(signature_algorithm, algorithm, True, salt_length))
        sig = asymmetric.sign_digest(private, hashed, algorithm, rsa_padding)
        if kind in asymmetric.CURVES and (marshaling or "asn1") == "jws":
            raw_sig = asymmetric.ecdsa_to_raw(sig, asymmetric.scalar_bytes(private))
            return f"{PREFIX}{version}:" + base64.urlsafe_b64encode(raw_sig).decode().rstrip("=")
        return f"{PREFIX}{version}:{b64(sig)}"

    def verify(self, record: Dict[str, Any], data: bytes, signature: Any, hash_algorithm: Optional[str],
               prehashed: bool = False, signature_algorithm: Optional[str] = None,
               marshaling: Optional[str] = None, salt_length: Any = None) -> bool:
        check_state(record, "use")
        s, kind = self._signing(record)
        version, body = self.versioned(record, s, signature, "signature")
        public = self._private(record, version).public_key()
        try:
            if kind in asymmetric.CURVES and (marshaling or "asn1") == "jws":
                raw_sig = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
                der = asymmetric.ecdsa_from_raw(raw_sig, asymmetric.scalar_bytes(public))
                if der is None:
                    return False
                sig = der
            else:
                sig = b64decode(body, "signature")
        except (ValueError, binascii.Error):
            return False
        if kind == "ed25519":
            return asymmetric.verify_ed25519(public, sig, data)
        algorithm = _hash(hash_algorithm)
        hashed = data if prehashed else asymmetric.digest_of(algorithm, data)
        rsa_padding = (None if kind in asymmetric.CURVES
                       else _rsa_padding(signature_algorithm, algorithm, False, salt_length))
        return asymmetric.verify_digest(public, sig, hashed, algorithm, rsa_padding)


PUBLIC_NAMES = {"ed25519": "ed25519", "ecdsa-p256": "P-256", "ecdsa-p384": "P-384", "ecdsa-p521": "P-521",
                "rsa-2048": "rsa-2048", "rsa-3072": "rsa-3072", "rsa-4096": "rsa-4096"}
# Vault's hash names; signing, HMAC and hash/ all accept exactly these.
HASHES: Dict[str, Callable[[], hashes.HashAlgorithm]] = {"sha2-224": hashes.SHA224, "sha2-256": hashes.SHA256, "sha2-384": hashes.SHA384,
          "sha2-512": hashes.SHA512, "sha3-224": hashes.SHA3_224, "sha3-256": hashes.SHA3_256,
          "sha3-384": hashes.SHA3_384, "sha3-512": hashes.SHA3_512}


def _hash(name: Optional[str]) -> hashes.HashAlgorithm:
    name = name or "sha2-256"
    if name not in HASHES:
        raise TransitError(f"unsupported hash algorithm {name}")
    return HASHES[name]()


def _rsa_padding(name: Optional[str], algorithm: hashes.HashAlgorithm, signing: bool,
                 salt_length: Any = None) -> Any:
    name = name or "pss"
    if name == "pkcs1v15":
        return padding.PKCS1v15()
    if name != "pss":
        raise TransitError(f"unsupported signature algorithm {name}")
    return padding.PSS(padding.MGF1(algorithm), _salt(salt_length, algorithm, signing))


def _salt(value: Any, algorithm: hashes.HashAlgorithm, signing: bool) -> Any:
    """Vault's salt_length: "auto" (the default: sign with the largest salt,
    detect it when verifying), "hash" (the digest's length), or a number of
    bytes, which verification then requires exactly."""
    if value is None or value == "auto":
        return padding.PSS.MAX_LENGTH if signing else padding.PSS.AUTO
    if value == "hash":
        return algorithm.digest_size
    text = str(value) if type(value) in (int, str) else ""
    if not text.isdigit() or len(text) > 5 or int(text) > 1024:
        raise TransitError(f"invalid salt length {str(value)[:32]!r}: auto, hash, or 0 to 1024")
    return int(text)


def _rfc3339(seconds: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- hashing, HMAC, trim, export, backup, auto-rotation ----------------------

def hash_name(algorithm: Optional[str]) -> str:
    """The hashlib name of a Vault hash name (hashlib spells sha3-224 as sha3_224)."""
    return _hash(algorithm).name.replace("-", "_")


def digest(algorithm: Optional[str], data: bytes) -> bytes:
    return hashlib.new(hash_name(algorithm), data).digest()


class TransitExtras:
    """The transit operations beyond encrypt/decrypt, over TransitService."""

    def __init__(self, transit: TransitService) -> None:
        self.transit = transit
        self.keys = transit.keys
        self.store = transit.store

    def hmac_key(self, record: Dict[str, Any], version: int) -> bytes:
        """The version's HMAC secret: an hmac key's material itself; for
        other types derived from the material with a label of its own, so
        it is independent of the encryption key in use."""
        if key_type(record).kind == "hmac":
            return self.keys.material(record["id"], version)
        return hmac.new(self.keys.material(record["id"], version), b"kms transit hmac key",
                        hashlib.sha256).digest()

    def hmac(self, record: Dict[str, Any], data: bytes, algorithm: Optional[str],
             key_version: Optional[int]) -> str:
        check_state(record, "use")
        version = encryption_version(record, key_settings(record), key_version or 0)
        if version in (Failure.VERSION_NEGATIVE, Failure.VERSION_ABOVE_LATEST):
            raise TransitError("invalid key version")
        if isinstance(version, Failure):
            raise TransitError("cannot generate HMAC: version is too old (disallowed by policy)")
        mac = hmac.new(self.hmac_key(record, version), data, hash_name(algorithm)).digest()
        return f"{PREFIX}{version}:{b64(mac)}"

    def verify_hmac(self, record: Dict[str, Any], data: bytes, mac_text: Any,
                    algorithm: Optional[str]) -> bool:
        check_state(record, "use")
        s = key_settings(record)
        version, body = self.transit.versioned(
            record, s, mac_text, "HMAC", "cannot verify HMAC: version is too old (disallowed by policy)")
        claimed = b64decode(body, "hmac")
        expected = hmac.new(self.hmac_key(record, version), data, hash_name(algorithm)).digest()
        return hmac.compare_digest(claimed, expected)

    def trim(self, name: str, min_available: Optional[int]) -> Dict[str, Any]:
        record = self.transit.record(name)
        if record is None:
            raise TransitError("invalid key name")
        if min_available is None:
            raise TransitError("missing min_available_version")
        target = min_available
        # Trimming destroys old versions at once; a KMS key's old versions
        # keep decrypting until the key itself is deleted.
        self.transit.require_transit_lifecycle(record)

        def mutate(rec: Dict[str, Any]) -> List[Op]:
            s = key_settings(rec)
            if target < s["min_available_version"]:
                raise TransitError("minimum available version cannot be decremented")
            if target <= 0:
                raise TransitError("minimum available version should be positive")
            if target > s["min_decryption_version"]:
                raise TransitError("minimum available version cannot be greater than minimum decryption version")
            if s["min_encryption_version"] and target > s["min_encryption_version"]:
                raise TransitError("minimum available version cannot be greater than minimum encryption version")
            rec["transit"] = {**s, "min_available_version": target}
            return [Op("del", "ver", f"{rec['id']}/{v}") for v in range(1, target)]

        return self.keys.change(record["id"], "update", mutate, compact=True)  # trimmed versions leave the disk

    def export(self, record: Dict[str, Any], kind: str, version: Optional[int]) -> Dict[str, Any]:
        """version None: every version still decrypting ("latest" or none given)."""
        check_state(record, "use")
        s = key_settings(record)
        meta = KEY_TYPES[s["type"]]
        allowed = {"hmac-key", "public-key"}
        if meta.encrypts:
            allowed.add("encryption-key")
        if meta.signs:
            allowed.add("signing-key")
        if kind not in ("encryption-key", "signing-key", "hmac-key", "public-key"):
            raise TransitError(f"invalid export type {kind}")
        if kind not in allowed:
            raise TransitError(f"{kind} export not supported for key type {s['type']}")
        if kind == "public-key" and not meta.signs:
            raise TransitError(f"public key export not supported for key type {s['type']}")
        if kind != "public-key" and not (s["exportable"] and self.transit.transit_lifecycle(record)):
            raise TransitError("private key material is not exportable")
        if version is None:
            versions = range(max(s["min_decryption_version"], 1), record["latest"] + 1)
        else:
            wanted = version
            if not 1 <= wanted <= record["latest"] or wanted < s["min_decryption_version"]:
                raise TransitError("invalid key version")
            versions = range(wanted, wanted + 1)
        out = {}
        for v in versions:
            if self.store.get("ver", f"{record['id']}/{v}") is None:
                continue
            out[str(v)] = self._export_one(record, meta.kind, kind, v)
        return {"name": record["alias"], "type": s["type"], "keys": out}

    def _export_one(self, record: Dict[str, Any], material_kind: str, kind: str, v: int) -> str:
        if kind == "hmac-key":
            return b64(self.hmac_key(record, v))
        if kind == "public-key":
            return self.transit.public_key(record, v)
        material = self.keys.material(record["id"], v)
        if material_kind in materials.SYMMETRIC_KINDS:
            return b64(material)
        private = materials.private_key(material_kind, material)
        if material_kind == "ed25519":  # seed || public key, as Vault exports it
            public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return b64(material + public)
        return str(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode())

    def backup(self, record: Dict[str, Any]) -> str:
        check_state(record, "use")
        s = key_settings(record)
        if not (s["exportable"] and s["allow_plaintext_backup"] and self.transit.transit_lifecycle(record)):
            raise TransitError("exporting is disallowed on the policy; set exportable and "
                               "allow_plaintext_backup to back it up")
        versions = {}
        for v in range(1, record["latest"] + 1):
            entry = self.store.get("ver", f"{record['id']}/{v}")
            if entry is not None:
                versions[str(v)] = {"key": b64(self.keys.material(record["id"], v)), "created": entry["created"]}
        document = {"kms_backup": 1, "name": record["alias"], "settings": s,
                    "latest": record["latest"], "versions": versions}
        return b64(json.dumps(document, sort_keys=True).encode())

    def read_backup(self, backup: Any) -> "Backup":
        """A backup made by backup(), read and checked whole: its name,
        settings, every version's number, date and material. Nothing is
        stored from a backup that fails any check."""
        try:
            document = json.loads(b64decode(backup, "backup"))
        except (TransitError, ValueError, UnicodeDecodeError, RecursionError):
            raise TransitError("failed to restore the backup: not a kms transit backup") from None
        return Backup.read(document)

    def restore(self, backup: "Backup", name: str, force: bool, creator: str) -> Dict[str, Any]:
        name = check_name(name)
        if self.transit.record(name) is not None:
            if not force:
                raise TransitError(f"key {name!r} already exists")
            raise TransitError("restoring over an existing key is not supported; delete it first")
        meta = KEY_TYPES[backup.settings["type"]]
        # An hmac key's size is its material's (each version was checked to fit).
        size = len(next(iter(backup.versions.values()))[0]) if meta.kind == "hmac" else meta.size
        try:
            return self.keys.create_with_versions(
                name, "restored transit key", meta.usage, creator, size,
                {"transit": backup.settings, "material_kind": meta.kind, "managed_by": MANAGED_BY},
                backup.versions)
        except errors.AliasExists:
            raise TransitError(f"key {name!r} already exists") from None

    def rotate_due(self) -> List[str]:
        """Keys whose auto_rotate_period has passed since their newest version."""
        now = self.keys.clock.now_s()
        rotated = []
        for record in list(self.store.items("key").values()):
            period = record.get("transit", {}).get("auto_rotate_period", 0)
            if not period or record["state"] != ENABLED:
                continue
            newest = self.store.get("ver", f"{record['id']}/{record['latest']}")
            if newest is not None and newest["created"] + period <= now:
                self.keys.rotate(record["id"], manual_rules=False)
                rotated.append(record["id"])
        return rotated


class Backup:
    """A checked backup document (see TransitExtras.backup for its layout)."""

    FLAGS = ("derived", "convergent_encryption", "exportable", "allow_plaintext_backup",
             "deletion_allowed")
    NUMBERS = ("auto_rotate_period", "min_decryption_version", "min_encryption_version",
               "min_available_version")

    MAX_LATEST = 1_000_000
    # Creation times datetime can render (describe shows them as RFC 3339):
    # up to the last second of year 9999.
    MAX_CREATED = 253_402_300_799
    VERSION_NUMBER = re.compile(r"[1-9][0-9]{0,6}\Z")  # ASCII digits, no leading zero

    def __init__(self, name: str, settings: Dict[str, Any], versions: Dict[int, Tuple[bytes, int]]) -> None:
        self.name, self.settings, self.versions = name, settings, versions

    @classmethod
    def read(cls, document: Any) -> "Backup":
        def bad(why: str) -> TransitError:
            return TransitError(f"failed to restore the backup: {why}")

        if not isinstance(document, dict) or document.get("kms_backup") != 1:
            raise bad("not a kms transit backup")
        name, settings, latest = document.get("name"), document.get("settings"), document.get("latest")
        if not isinstance(name, str) or len(name) > 256 or not VAULT_NAME_RE.match(name):
            raise bad("the backup names no valid key")
        if not isinstance(settings, dict) or set(settings) - set(DEFAULTS):
            raise bad("its settings are not transit key settings")
        clean = {**DEFAULTS, **settings}
        meta = KEY_TYPES.get(clean["type"]) if isinstance(clean["type"], str) else None
        if meta is not None and not meta.transit:
            meta = None  # not a transit type (SM2): no backup carries one
        if meta is None:
            raise bad(f"unknown key type {clean['type']!r}")
        if not all(isinstance(clean[f], bool) for f in cls.FLAGS):
            raise bad("its flags must be booleans")
        if not all(type(clean[n]) is int and 0 <= clean[n] <= cls.MAX_LATEST for n in cls.NUMBERS[1:]):
            raise bad("its version limits must be whole numbers of versions")
        period = clean["auto_rotate_period"]
        if type(period) is not int or not (period == 0 or 3600 <= period <= cls.MAX_CREATED):
            raise bad("its rotation period must be 0 or whole seconds of at least an hour")
        if (clean["derived"] and not meta.derives) or (clean["convergent_encryption"] and not clean["derived"]):
            raise bad("its derivation settings do not fit its key type")
        if type(latest) is not int or not 1 <= latest <= cls.MAX_LATEST:
            raise bad("its latest version is not a version number")
        if not 1 <= clean["min_decryption_version"] <= latest or clean["min_encryption_version"] > latest:
            raise bad("its minimum versions are outside its versions")
        if clean["min_available_version"] > clean["min_decryption_version"]:
            raise bad("its minimum available version is above its minimum decryption version")
        versions = cls._versions(document.get("versions"), latest, max(clean["min_available_version"], 1),
                                 meta, clean["type"], bad)
        return cls(name, clean, versions)

    @classmethod
    def _versions(cls, entries: Any, latest: int, first: int, meta: KeyType, key_type: str,
                  bad: Callable[[str], TransitError]) -> Dict[int, Tuple[bytes, int]]:
        """Every version from `first` (the oldest a trim left) to `latest`,
        as backup() writes them, each with material that loads as key_type."""
        if not isinstance(entries, dict) or not entries:
            raise bad("it holds no key versions")
        versions: Dict[int, Tuple[bytes, int]] = {}
        for number, entry in entries.items():
            if not (isinstance(number, str) and cls.VERSION_NUMBER.match(number)
                    and first <= int(number) <= latest):
                raise bad(f"a version is not a number from {first} to {latest}")
            if (not isinstance(entry, dict) or set(entry) != {"key", "created"}
                    or type(entry["created"]) is not int or not 0 <= entry["created"] <= cls.MAX_CREATED):
                raise bad(f"version {number} is not a key and a creation time")
            material = b64text.decode(entry["key"]) if isinstance(entry["key"], str) else None
            if material is None or not material_fits(meta, material):
                raise bad(f"the material of version {number} does not match key type {key_type}")
            versions[int(number)] = (material, entry["created"])
        if len(versions) != latest - first + 1:
            raise bad(f"it must hold every version from {first} to {latest}")
        return versions


def material_fits(meta: KeyType, material: bytes) -> bool:
    """Symmetric material of the type's size; asymmetric material that loads
    as a private key of the type's kind."""
    if meta.kind in materials.SYMMETRIC_KINDS:
        return len(material) == meta.size
    if meta.kind == "ed25519":
        return len(material) == 32
    try:
        private = materials.private_key(meta.kind, material)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    if meta.kind in asymmetric.CURVES:
        return (isinstance(private, ec.EllipticCurvePrivateKey)
                and isinstance(private.curve, asymmetric.CURVES[meta.kind]))
    return isinstance(private, rsa.RSAPrivateKey) and private.key_size == asymmetric.RSA_BITS.get(meta.kind)
