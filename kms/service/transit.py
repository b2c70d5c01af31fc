"""Vault transit semantics over the one key store (spec/vault-transit-api.md).

A transit key is a CMK whose alias is the transit name: the same versions,
states and audit records in both APIs. Its Vault settings live in the CMK
record under "transit" (absent: the defaults). Ciphertexts are
"vault:v<N>:" + base64(nonce || ciphertext || tag), AES-GCM with the
caller's associated data (none by default), as OpenBao lays them out.

Batches: every item is parsed and checked in Python, then all items that
share a key version go through one native batch call; results come back in
input order with per-item errors. A single request is a one-item batch.
Derived keys (HKDF-SHA256 of the version's material, info = context) get one
key per context, so they are sealed item by item.
"""
import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kms import b64text, errors
from kms.numbers import ascii_int
from kms.aead import AESGCM
from kms.keys import material as materials
from kms.service.keys import (ALIAS_RE, ENABLED, PENDING_DELETE, SERVICE_ALIAS_PREFIX,
                              USAGE_SYMMETRIC, KeyService, check_state)
from kms.store import Op

# One naming rule for a key in both APIs: a transit name is a Tencent alias
# (kms.service.keys.ALIAS_RE), so every key made here can be named there.
NAME_RULE = "1 to 60 characters of A-Z a-z 0-9 - _, starting with a letter or digit"
# Vault's own rule, which transit followed before: a backup may carry such a
# name (it can still be restored under a name of today's rule).
VAULT_NAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-.@]*[A-Za-z0-9_])?\Z")
# Key types: material kind and size, what each can do, and the CMK usage
# they appear under in the Tencent API.
KEY_TYPES: Dict[str, Dict[str, Any]] = {
    "aes256-gcm96": {"kind": "aes", "size": 32, "encrypt": True, "sign": False, "derive": True,
                     "usage": USAGE_SYMMETRIC},
    "aes128-gcm96": {"kind": "aes", "size": 16, "encrypt": True, "sign": False, "derive": True,
                     "usage": USAGE_SYMMETRIC},
    "chacha20-poly1305": {"kind": "chacha", "size": 32, "encrypt": True, "sign": False,
                          "derive": True, "usage": USAGE_SYMMETRIC},
    "ed25519": {"kind": "ed25519", "size": 32, "encrypt": False, "sign": True, "derive": False,
                "usage": "ASYMMETRIC_SIGN_VERIFY_ED25519"},
    "ecdsa-p256": {"kind": "ecdsa-p256", "size": 0, "encrypt": False, "sign": True, "derive": False,
                   "usage": "ASYMMETRIC_SIGN_VERIFY_ECC"},
    "rsa-2048": {"kind": "rsa-2048", "size": 0, "encrypt": True, "sign": True, "derive": False,
                 "usage": "ASYMMETRIC_DECRYPT_RSA_2048"},
}
TYPES = {name: meta["size"] for name, meta in KEY_TYPES.items()}
USAGES = {meta["usage"] for meta in KEY_TYPES.values()}
DEFAULTS = {"type": "aes256-gcm96", "derived": False, "convergent_encryption": False,
            "exportable": False, "allow_plaintext_backup": False, "auto_rotate_period": 0,
            "deletion_allowed": False, "min_decryption_version": 1,
            "min_encryption_version": 0, "min_available_version": 0}
PREFIX = "vault:v"
# Transit's own lifecycle (export, immediate deletion, trimming versions)
# belongs to keys made through transit, marked so in their record. A key made
# any other way (the Tencent API, a service's managed key) keeps its
# guarantees whatever API touches it: its material never leaves, and it
# goes only through Disabled and a 7-30 day deletion window.
MANAGED_BY = "transit"
KMS_GUARANTEED = ("this key was not created through transit; its material cannot be made exportable "
                  "and it can be deleted only by scheduling its deletion (ScheduleKeyDeletion)")
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
MISSING_CONTEXT = ("missing 'context' for key derivation; the key was created using a derived key, "
                   "which means additional, per-request information must be included in order "
                   "to perform operations with the key")
# RSA-OAEP with SHA-256 under a 2048-bit key: 256 - 2 * 32 - 2 bytes.
RSA_MAX_PLAINTEXT = 190
# The digits of a version in "vault:v<N>:": a 64-bit number at most.
MAX_VERSION_DIGITS = 19


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


class Item:
    """One batch item's result: ciphertext/plaintext or an error."""

    __slots__ = ("result", "error", "version")

    def __init__(self) -> None:
        self.result: Optional[str] = None
        self.error: Optional[str] = None
        self.version = 0


class TransitService:
    def __init__(self, keys: KeyService) -> None:
        self.keys = keys
        self.store = keys.store

    # ---- keys --------------------------------------------------------------

    def record(self, name: str) -> Optional[Dict[str, Any]]:
        holder = self.store.get("alias", name)
        if holder is None:
            return None
        record = self.store.get("key", holder)
        if record is None or record["state"] == PENDING_DELETE or record["usage"] not in USAGES:
            return None
        return record

    @staticmethod
    def transit_lifecycle(record: Dict[str, Any]) -> bool:
        """Made through transit (create, upsert or restore): the only keys
        transit may export, back up, trim or delete at once."""
        return record.get("managed_by") == MANAGED_BY

    def require_transit_lifecycle(self, record: Dict[str, Any]) -> None:
        if not self.transit_lifecycle(record):
            raise TransitError(KMS_GUARANTEED)

    @staticmethod
    def plain_aes(s: Dict[str, Any]) -> bool:
        """A non-derived AES-GCM key (by its settings): the one kind the
        engine's batch calls and native transit readers serve."""
        return not s["derived"] and KEY_TYPES[s["type"]]["kind"] == "aes"

    @staticmethod
    def settings(record: Dict[str, Any]) -> Dict[str, Any]:
        return {**DEFAULTS, "type": {16: "aes128-gcm96"}.get(record.get("material_bytes", 32), "aes256-gcm96"),
                **record.get("transit", {})}

    def create(self, name: str, key_type: str = "aes256-gcm96", derived: bool = False,
               convergent: bool = False, exportable: bool = False,
               allow_plaintext_backup: bool = False, auto_rotate_period: int = 0,
               creator: str = "root") -> Dict[str, Any]:
        """Idempotent: an existing key is returned unchanged."""
        check_name(name)
        existing = self.record(name)
        if existing is not None:
            return existing
        settings = self.new_settings(key_type, derived, convergent, exportable,
                                     allow_plaintext_backup, auto_rotate_period)
        meta = KEY_TYPES[key_type]
        try:
            return self.keys._create(name, "transit key", meta["usage"], False, {}, owner="user",
                                     creator=creator, material_bytes=meta["size"],
                                     extra={"transit": settings, "material_kind": meta["kind"],
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
        if key_type not in KEY_TYPES:
            raise TransitError(f"unknown key type {key_type}")
        meta = KEY_TYPES[key_type]
        if derived and not meta["derive"]:
            raise TransitError(f"key derivation is not supported for key type {key_type}")
        if convergent and not derived:
            raise TransitError("convergent encryption requires derivation to be enabled")
        if auto_rotate_period and auto_rotate_period < 3600:
            raise TransitError("auto rotate period must be 0 to disable or at least an hour")
        return {"type": key_type, "derived": derived, "convergent_encryption": convergent,
                "exportable": exportable, "allow_plaintext_backup": allow_plaintext_backup,
                "auto_rotate_period": auto_rotate_period}

    def upsert_for_encrypt(self, name: str, items: Sequence[Dict[str, Any]], key_type: str,
                           convergent: bool, creator: str,
                           before_create: Callable[[], None]) -> Tuple[Optional[Dict[str, Any]], List[Item]]:
        """Vault's upsert: a missing key created by its first encryption, as
        one step that either happens or does not. Every item is checked
        against the key that would be made (type, derivation, base64,
        version) before anything is stored, and the key is created only when
        at least one item will be sealed. Returns the key (None: nothing was
        created) and each item's check, its error set where it failed."""
        check_name(name)
        derived = bool(items[0].get("context"))  # Vault derives when the first use has a context
        settings = {**DEFAULTS, **self.new_settings(key_type, derived, convergent)}
        kind = self._require_encryption(settings, "encryption")
        first = {"latest": 1}  # the key as its creation leaves it
        checked = [Item() for _ in items]
        for item, result in zip(items, checked):
            try:
                self._prepare(first, settings, kind, item)
            except errors.KMSError as exc:
                result.error = str(exc)
        if all(result.error is not None for result in checked):
            return None, checked
        before_create()
        return self.create(name, key_type, derived, convergent, creator=creator), checked

    def describe(self, record: Dict[str, Any]) -> Dict[str, Any]:
        s = self.settings(record)
        meta = KEY_TYPES[s["type"]]
        versions: Dict[str, Any] = {}
        for v in range(max(s["min_decryption_version"], 1), record["latest"] + 1):
            entry = self.store.get("ver", f"{record['id']}/{v}")
            if entry is None:
                continue
            if meta["sign"]:
                versions[str(v)] = {"name": PUBLIC_NAMES[meta["kind"]],
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
            "auto_rotate_period": s["auto_rotate_period"], "supports_encryption": meta["encrypt"],
            "supports_decryption": meta["encrypt"], "supports_signing": meta["sign"],
            "supports_derivation": meta["derive"],
            "imported_key": record["origin"] != "TENCENT_KMS", "soft_deleted": False,
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
                      if r["state"] != PENDING_DELETE and r["usage"] in USAGES
                      and not r["alias"].startswith(SERVICE_ALIAS_PREFIX))

    def configure(self, name: str, params: Dict[str, Any]) -> Tuple[Dict[str, Any], List[str]]:
        """Apply the settings given (typed: integers, booleans, seconds), all
        or nothing. Returns the record and any warnings."""
        if self.record(name) is None:
            raise TransitError(f"no existing key named {name} could be found")
        warnings: List[str] = []

        def mutate(record: Dict[str, Any]) -> List[Op]:
            s = self.settings(record)
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

        record = self.keys._change(self.record(name)["id"], "update", mutate)  # type: ignore[index]
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
            if not self.settings(current)["deletion_allowed"]:
                raise TransitError(f"error deleting policy {name}: deletion is not allowed for this key")
            ops = [Op("del", "key", key_id), Op("del", "alias", current["alias"])]
            return ops + [Op("del", "ver", f"{key_id}/{v}") for v in range(1, current["latest"] + 1)]

        self.store.commit(build, compact=True)  # the wrapped material leaves the disk

    # ---- cryptography ------------------------------------------------------

    def _key_for(self, record: Dict[str, Any], version: int, context: bytes) -> Tuple[AESGCM, Optional[bytes]]:
        """The AEAD for a version (derived per context if the key is), and the
        convergent HMAC key when convergent encryption is on."""
        s = self.settings(record)
        kind = KEY_TYPES[s["type"]]["kind"]
        if not s["derived"]:
            if kind == "chacha":
                return ChaCha20Poly1305(self.keys.material(record["id"], version)), None
            return self.keys.box(record["id"], version), None
        if not context:
            raise TransitError(MISSING_CONTEXT)
        size = TYPES[s["type"]]
        material = self.keys.material(record["id"], version)
        length = size + 32 if s["convergent_encryption"] else size
        derived = HKDF(hashes.SHA256(), length, None, context).derive(material)
        cipher = ChaCha20Poly1305 if kind == "chacha" else AESGCM
        return cipher(derived[:size]), derived[size:] if s["convergent_encryption"] else None

    def _require_encryption(self, s: Dict[str, Any], what: str) -> str:
        meta = KEY_TYPES[s["type"]]
        if not meta["encrypt"]:
            raise TransitError(f"message {what} not supported for key type {s['type']}")
        return str(meta["kind"])

    def encrypt(self, record: Dict[str, Any], items: Sequence[Dict[str, Any]]) -> List[Item]:
        check_state(record, "encrypt")
        s = self.settings(record)
        kind = self._require_encryption(s, "encryption")
        results = [Item() for _ in items]
        groups: Dict[int, List[Tuple[int, bytes, bytes]]] = {}
        for i, item in enumerate(items):
            try:
                version, plaintext, aad, context = self._prepare(record, s, kind, item)
                if kind == "rsa-2048":
                    public = self._private(record, version).public_key()
                    body = public.encrypt(plaintext, _oaep())
                    results[i].result = f"{PREFIX}{version}:{b64(body)}"
                    results[i].version = version
                elif not self.plain_aes(s):
                    box, convergent = self._key_for(record, version, context)
                    nonce = (hmac.new(convergent, plaintext, hashlib.sha256).digest()[:12]
                             if convergent else os.urandom(12))
                    body = nonce + box.encrypt(nonce, plaintext, aad or None)
                    results[i].result = f"{PREFIX}{version}:{b64(body)}"
                    results[i].version = version
                else:
                    groups.setdefault(version, []).append((i, plaintext, aad))
            except errors.KMSError as exc:
                results[i].error = str(exc)
        for version, members in groups.items():
            box = self.keys.box(record["id"], version)
            if len(members) == 1:  # one call, without the batch bookkeeping
                i, plaintext, aad = members[0]
                nonce = os.urandom(12)
                results[i].result = f"{PREFIX}{version}:{b64(nonce + box.encrypt(nonce, plaintext, aad))}"
                results[i].version = version
                continue
            sealed = box.encrypt_batch(None, [m[1] for m in members], [m[2] for m in members])
            for j, (i, _, _) in enumerate(members):
                results[i].result = f"{PREFIX}{version}:{b64(sealed.nonce(j) + sealed[j])}"
                results[i].version = version
        return results

    def _prepare(self, record: Dict[str, Any], s: Dict[str, Any], kind: str,
                 item: Dict[str, Any]) -> Tuple[int, bytes, bytes, bytes]:
        """An item's version, plaintext, associated data and context, checked
        as far as they can be before sealing (the same checks judge a key's
        first use before it is created)."""
        version = self._encryption_version(record, s, item.get("key_version"))
        plaintext = b64decode(item.get("plaintext"), "plaintext")
        aad = b64decode(item.get("associated_data"), "associated_data")
        context = b64decode(item.get("context"), "context")
        if kind == "rsa-2048":
            if aad:
                raise TransitError("'[0].associated_data' provided for non-AEAD cipher suite rsa-2048")
            if len(plaintext) > RSA_MAX_PLAINTEXT:
                raise TransitError(f"plaintext too long for rsa-2048: at most {RSA_MAX_PLAINTEXT} bytes")
        if s["derived"] and not context:
            raise TransitError(MISSING_CONTEXT)
        return version, plaintext, aad, context

    def _encryption_version(self, record: Dict[str, Any], s: Dict[str, Any],
                            requested: Optional[int]) -> int:
        """The version to seal with; requested is an integer (None or 0:
        the latest), as the adapters' parameter readers give it."""
        version = requested or 0
        if version < 0:
            raise TransitError("requested version for encryption is negative")
        if version > record["latest"]:
            raise TransitError("requested version for encryption is higher than the latest key version")
        if version == 0:
            return int(record["latest"])  # min_encryption_version limits explicit versions only
        if s["min_encryption_version"] and version < s["min_encryption_version"]:
            raise TransitError("requested version for encryption is less than the minimum encryption key version")
        if version < s["min_decryption_version"]:
            raise TransitError("no such key version")
        return version

    @staticmethod
    def check_version(record: Dict[str, Any], s: Dict[str, Any], version: int,
                      what: str = "ciphertext", too_old: str = TOO_OLD) -> int:
        """A version read from a ciphertext, signature or HMAC must exist and
        not be below min_decryption_version."""
        if version > record["latest"]:
            raise TransitError(f"invalid {what}: version is too new")
        if version < s["min_decryption_version"]:
            raise TransitError(too_old)
        return version

    def versioned(self, record: Dict[str, Any], s: Dict[str, Any], text: Any,
                  what: str = "ciphertext", too_old: str = TOO_OLD) -> Tuple[int, str]:
        """Split "vault:v<N>:<body>" (ciphertexts, signatures and HMACs share
        it) into a checked version and the body text."""
        if not isinstance(text, str) or not text.startswith(PREFIX):
            raise TransitError(f"invalid {what}: no prefix")
        version_text, sep, body = text[len(PREFIX):].partition(":")
        version = ascii_int(version_text, MAX_VERSION_DIGITS, negative=False) if sep else None
        if version is None:
            raise TransitError(f"invalid {what}: version number could not be decoded")
        # vault:v0: is read as version 1
        return self.check_version(record, s, max(version, 1), what, too_old), body

    def parse(self, record: Dict[str, Any], s: Dict[str, Any], ciphertext: Any) -> Tuple[int, bytes]:
        if not ciphertext or not isinstance(ciphertext, str):
            raise TransitError("missing ciphertext to decrypt")
        version, body = self.versioned(record, s, ciphertext)
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise TransitError("invalid ciphertext: could not decode base64") from None
        if len(raw) < 12:
            raise TransitError("invalid ciphertext length")
        return version, raw

    def decrypt(self, record: Dict[str, Any], items: Sequence[Dict[str, Any]]) -> List[Item]:
        check_state(record, "decrypt")
        s = self.settings(record)
        kind = self._require_encryption(s, "decryption")
        if len(items) == 1 and self.plain_aes(s):
            opened = self._open_one(record, s, items[0])
            if opened is not None:
                return [opened]
        results = [Item() for _ in items]
        groups: Dict[int, List[Tuple[int, bytes, bytes, bytes]]] = {}
        for i, item in enumerate(items):
            try:
                version, raw = self.parse(record, s, item.get("ciphertext"))
                aad = b64decode(item.get("associated_data"), "associated_data")
                context = b64decode(item.get("context"), "context")
                if kind == "rsa-2048":
                    try:
                        results[i].result = b64(self._private(record, version).decrypt(raw, _oaep()))
                    except ValueError:
                        raise TransitError("failed to RSA decrypt the ciphertext") from None
                elif not self.plain_aes(s):
                    box, _ = self._key_for(record, version, context)
                    try:
                        results[i].result = b64(box.decrypt(raw[:12], raw[12:], aad or None))
                    except InvalidTag:
                        raise TransitError("cipher: message authentication failed") from None
                else:
                    groups.setdefault(version, []).append((i, raw[:12], raw[12:], aad))
            except errors.KMSError as exc:
                results[i].error = str(exc)
        for version, members in groups.items():
            box = self.keys.box(record["id"], version)
            if len(members) == 1:  # one call, without the batch bookkeeping
                i, nonce, sealed_item, aad = members[0]
                try:
                    results[i].result = b64(box.decrypt(nonce, sealed_item, aad))
                except InvalidTag:
                    results[i].error = "cipher: message authentication failed"
                continue
            opened = box.decrypt_batch([m[1] for m in members], [m[2] for m in members],
                                       [m[3] for m in members])
            for j, (i, _, _, _) in enumerate(members):
                plain = opened[j]
                if plain is None:
                    results[i].error = "cipher: message authentication failed"
                else:
                    results[i].result = b64(plain)
        return results

    _PLAIN_ITEM = frozenset(("ciphertext", "associated_data", "reference"))

    def _open_one(self, record: Dict[str, Any], s: Dict[str, Any], item: Dict[str, Any]) -> Optional[Item]:
        """A single well-formed AES item in one native call (base64 decode,
        open, base64 encode), or None: then the general loop runs and names
        whatever is wrong exactly as it always does."""
        text = item.get("ciphertext")
        if not isinstance(text, str) or not text.isascii() or not self._PLAIN_ITEM.issuperset(item):
            return None
        try:
            version, body = self.versioned(record, s, text)
            aad = b64decode(item.get("associated_data"), "associated_data")
        except errors.KMSError:
            return None
        plain = self.keys.box(record["id"], version).open_b64_one(body.encode("ascii"), aad)
        if plain is None:
            return None
        result = Item()
        result.result, result.version = plain.decode("ascii"), version
        return result

    # ---- asymmetric keys -----------------------------------------------------

    def _private(self, record: Dict[str, Any], version: int):  # type: ignore[no-untyped-def]
        # Loading (and checking) an RSA key costs tens of milliseconds.
        kind = KEY_TYPES[self.settings(record)["type"]]["kind"]
        return self.keys.made_from(record["id"], version, "private:" + str(kind),
                                   lambda material: materials.private_key(kind, material))

    def public_key(self, record: Dict[str, Any], version: int) -> str:
        """Raw base64 for ed25519, a PEM SubjectPublicKeyInfo block otherwise."""
        public = self._private(record, version).public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            return b64(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
        return public.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def _signing(self, record: Dict[str, Any]) -> Tuple[Dict[str, Any], str]:
        s = self.settings(record)
        if not KEY_TYPES[s["type"]]["sign"]:
            raise TransitError(f"key type {s['type']} does not support signing")
        return s, str(KEY_TYPES[s["type"]]["kind"])

    def sign(self, record: Dict[str, Any], data: bytes, hash_algorithm: Optional[str],
             key_version: Optional[int], prehashed: bool = False, signature_algorithm: Optional[str] = None,
             marshaling: Optional[str] = None) -> str:
        check_state(record, "encrypt")
        s, kind = self._signing(record)
        version = self._encryption_version(record, s, key_version)
        private = self._private(record, version)
        if kind == "ed25519":
            if prehashed:
                raise TransitError("ed25519 signatures over a prehashed input are not supported")
            sig = private.sign(data)
        else:
            algorithm = _hash(hash_algorithm)
            if prehashed and len(data) != algorithm.digest_size:
                raise TransitError(f"a prehashed input must be a {hash_algorithm or 'sha2-256'} digest "
                                   f"of {algorithm.digest_size} bytes, not {len(data)}")
            hashed = data if prehashed else _digest_with(algorithm, data)
            chosen = utils.Prehashed(algorithm)
            if kind == "ecdsa-p256":
                sig = private.sign(hashed, ec.ECDSA(chosen))
                if (marshaling or "asn1") == "jws":
                    r, s_value = utils.decode_dss_signature(sig)
                    raw_sig = r.to_bytes(32, "big") + s_value.to_bytes(32, "big")
                    return f"{PREFIX}{version}:" + base64.urlsafe_b64encode(raw_sig).decode().rstrip("=")
            else:
                sig = private.sign(hashed, _rsa_padding(signature_algorithm, algorithm, signing=True), chosen)
        return f"{PREFIX}{version}:{b64(sig)}"

    def verify(self, record: Dict[str, Any], data: bytes, signature: Any, hash_algorithm: Optional[str],
               prehashed: bool = False, signature_algorithm: Optional[str] = None,
               marshaling: Optional[str] = None) -> bool:
        from cryptography.exceptions import InvalidSignature

        s, kind = self._signing(record)
        version, body = self.versioned(record, s, signature, "signature")
        public = self._private(record, version).public_key()
        try:
            if kind == "ecdsa-p256" and (marshaling or "asn1") == "jws":
                raw_sig = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
                if len(raw_sig) != 64:
                    return False
                sig = utils.encode_dss_signature(int.from_bytes(raw_sig[:32], "big"),
                                                 int.from_bytes(raw_sig[32:], "big"))
            else:
                sig = b64decode(body, "signature")
            if kind == "ed25519":
                public.verify(sig, data)
            else:
                algorithm = _hash(hash_algorithm)
                hashed = data if prehashed else _digest_with(algorithm, data)
                chosen = utils.Prehashed(algorithm)
                if kind == "ecdsa-p256":
                    public.verify(sig, hashed, ec.ECDSA(chosen))
                else:
                    public.verify(sig, hashed, _rsa_padding(signature_algorithm, algorithm, signing=False), chosen)
        except (InvalidSignature, ValueError, binascii.Error):
            return False
        return True

    def rewrap(self, record: Dict[str, Any], items: Sequence[Dict[str, Any]]) -> List[Item]:
        opened = self.decrypt(record, [{"ciphertext": it.get("ciphertext"), "context": it.get("context")}
                                       for it in items])
        again = [{"plaintext": o.result, "context": it.get("context"), "key_version": it.get("key_version")}
                 for o, it in zip(opened, items)]
        sealed = self.encrypt(record, [a for a, o in zip(again, opened) if o.error is None])
        out, k = [], 0
        for o in opened:
            if o.error is not None:
                out.append(o)
            else:
                out.append(sealed[k])
                k += 1
        return out


PUBLIC_NAMES = {"ed25519": "ed25519", "ecdsa-p256": "P-256", "rsa-2048": "rsa-2048"}
# Vault's hash names; signing, HMAC and hash/ all accept exactly these.
HASHES = {"sha2-224": hashes.SHA224, "sha2-256": hashes.SHA256, "sha2-384": hashes.SHA384,
          "sha2-512": hashes.SHA512, "sha3-224": hashes.SHA3_224, "sha3-256": hashes.SHA3_256,
          "sha3-384": hashes.SHA3_384, "sha3-512": hashes.SHA3_512}


def _hash(name: Optional[str]) -> hashes.HashAlgorithm:
    name = name or "sha2-256"
    if name not in HASHES:
        raise TransitError(f"unsupported hash algorithm {name}")
    return HASHES[name]()


def _digest_with(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _rsa_padding(name: Optional[str], algorithm: hashes.HashAlgorithm, signing: bool) -> Any:
    name = name or "pss"
    if name == "pkcs1v15":
        return padding.PKCS1v15()
    if name != "pss":
        raise TransitError(f"unsupported signature algorithm {name}")
    # Vault signs with the largest salt and detects it when verifying.
    return padding.PSS(padding.MGF1(algorithm), padding.PSS.MAX_LENGTH if signing else padding.PSS.AUTO)


def _oaep() -> Any:
    return padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)


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
        """The version's HMAC secret: derived from its material with a label
        of its own, so it is independent of the encryption key in use."""
        return hmac.new(self.keys.material(record["id"], version), b"kms transit hmac key",
                        hashlib.sha256).digest()

    def hmac(self, record: Dict[str, Any], data: bytes, algorithm: Optional[str],
             key_version: Optional[int]) -> str:
        s = self.transit.settings(record)
        version = key_version or 0
        if version < 0 or version > record["latest"]:
            raise TransitError("invalid key version")
        if version == 0:
            version = record["latest"]
        if version < max(s["min_encryption_version"], s["min_decryption_version"]):
            raise TransitError("cannot generate HMAC: version is too old (disallowed by policy)")
        mac = hmac.new(self.hmac_key(record, version), data, hash_name(algorithm)).digest()
        return f"{PREFIX}{version}:{b64(mac)}"

    def verify_hmac(self, record: Dict[str, Any], data: bytes, mac_text: Any,
                    algorithm: Optional[str]) -> bool:
        s = self.transit.settings(record)
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
            s = self.transit.settings(rec)
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

        return self.keys._change(record["id"], "update", mutate, compact=True)  # trimmed versions leave the disk

    def export(self, record: Dict[str, Any], kind: str, version: Optional[int]) -> Dict[str, Any]:
        """version None: every version still decrypting ("latest" or none given)."""
        s = self.transit.settings(record)
        meta = KEY_TYPES[s["type"]]
        allowed = {"hmac-key", "public-key"}
        if meta["encrypt"]:
            allowed.add("encryption-key")
        if meta["sign"]:
            allowed.add("signing-key")
        if kind not in ("encryption-key", "signing-key", "hmac-key", "public-key"):
            raise TransitError(f"invalid export type {kind}")
        if kind not in allowed:
            raise TransitError(f"{kind} export not supported for key type {s['type']}")
        if kind == "public-key" and not meta["sign"]:
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
            out[str(v)] = self._export_one(record, meta["kind"], kind, v)
        return {"name": record["alias"], "type": s["type"], "keys": out}

    def _export_one(self, record: Dict[str, Any], material_kind: str, kind: str, v: int) -> str:
        if kind == "hmac-key":
            return b64(self.hmac_key(record, v))
        if kind == "public-key":
            return self.transit.public_key(record, v)
        material = self.keys.material(record["id"], v)
        if material_kind in ("aes", "chacha"):
            return b64(material)
        private = materials.private_key(material_kind, material)
        if material_kind == "ed25519":  # seed || public key, as Vault exports it
            public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return b64(material + public)
        return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()

    def backup(self, record: Dict[str, Any]) -> str:
        s = self.transit.settings(record)
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
        try:
            return self.keys.create_with_versions(
                name, "restored transit key", meta["usage"], creator, meta["size"],
                {"transit": backup.settings, "material_kind": meta["kind"], "managed_by": MANAGED_BY},
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
        if meta is None:
            raise bad(f"unknown key type {clean['type']!r}")
        if not all(isinstance(clean[f], bool) for f in cls.FLAGS):
            raise bad("its flags must be booleans")
        if not all(type(clean[n]) is int and 0 <= clean[n] <= cls.MAX_LATEST for n in cls.NUMBERS[1:]):
            raise bad("its version limits must be whole numbers of versions")
        period = clean["auto_rotate_period"]
        if type(period) is not int or not (period == 0 or 3600 <= period <= cls.MAX_CREATED):
            raise bad("its rotation period must be 0 or whole seconds of at least an hour")
        if (clean["derived"] and not meta["derive"]) or (clean["convergent_encryption"] and not clean["derived"]):
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
    def _versions(cls, entries: Any, latest: int, first: int, meta: Dict[str, Any], key_type: str,
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
            if material is None or not _material_fits(meta, material):
                raise bad(f"the material of version {number} does not match key type {key_type}")
            versions[int(number)] = (material, entry["created"])
        if len(versions) != latest - first + 1:
            raise bad(f"it must hold every version from {first} to {latest}")
        return versions


def _material_fits(meta: Dict[str, Any], material: bytes) -> bool:
    """Symmetric material of the type's size; asymmetric material that loads
    as a private key of the type's kind."""
    if meta["kind"] in materials.SYMMETRIC_KINDS:
        return len(material) == meta["size"]
    if meta["kind"] == "ed25519":
        return len(material) == 32
    try:
        private = materials.private_key(meta["kind"], material)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    if meta["kind"] == "ecdsa-p256":
        return isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1"
    return isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
