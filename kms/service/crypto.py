"""One path for every encrypt, decrypt and rewrap, whatever its wire format.

1. The adapter reads the request into items (kms.api.<protocol>; natively
   where the body's shape allows).
2. plan_encrypt / plan_decrypt apply the rules once: the key's state, what
   its type can do, the version each item uses, and the item rules that
   follow from type and settings (RSA's bounds, derivation's context). The
   plan holds the items grouped by version, each failed item's code.
3. An executor runs the plan: seal / open here (the engine's batch call per
   version group, one call per item for derived, ChaCha20 and RSA keys), or
   a native reader's executor in the adapter, chosen only after planning.
4. The adapter encodes the outcomes in its protocol's format, with its own
   wording for each Failure.

Policy is checked before planning, by key_for (the same rule for every
route that names a key by its transit name).
"""
import enum
import hashlib
import hmac
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kms import errors
from kms.aead import AESGCM, NONCE_SIZE
from kms.keys import blob as blob_format
from kms.keys.asymmetric import RSA_BITS, RSA_PADDINGS, oaep_sha256_limit
from kms.keys.xchacha import NONCE_SIZE as XCHACHA_NONCE_SIZE
from kms.keys.sm4 import SM4GCM
from kms.keys.xchacha import XChaCha20Poly1305
from kms.service.keys import MAX_PLAINTEXT, KeyService, check_state
from kms.service.keytypes import KeyType, key_type, one_key_per_version, settings
from kms.service.policies import ANY, PolicyService, alias_resource, key_resource


Record = Dict[str, Any]
# The AEAD of each symmetric kind, and its nonce size (the nonce leads the ciphertext).
CIPHERS: Dict[str, Any] = {"aes": AESGCM, "chacha": ChaCha20Poly1305, "xchacha": XChaCha20Poly1305,
                           "sm4": SM4GCM}
NONCE_SIZES = {"aes": NONCE_SIZE, "chacha": NONCE_SIZE, "xchacha": XCHACHA_NONCE_SIZE, "sm4": NONCE_SIZE}
# The CiphertextBlob format byte of each cipher a blob can be sealed with.
BLOB_FORMATS = {"aes": blob_format.FORMAT, "sm4": blob_format.FORMAT_SM4}


class Failure(enum.Enum):
    """Why one item failed; each adapter words it in its own protocol."""

    VERSION_NEGATIVE = "version_negative"
    VERSION_ABOVE_LATEST = "version_above_latest"
    VERSION_BELOW_MIN_ENCRYPTION = "version_below_min_encryption"
    VERSION_RETIRED = "version_retired"  # asked for, below min_decryption_version
    CIPHERTEXT_TOO_NEW = "ciphertext_too_new"
    CIPHERTEXT_TOO_OLD = "ciphertext_too_old"
    VERSION_GONE = "version_gone"  # trimmed or never held
    MISSING_CONTEXT = "missing_context"
    AAD_NOT_SUPPORTED = "aad_not_supported"  # RSA is not an AEAD
    PLAINTEXT_TOO_LONG = "plaintext_too_long"
    TOO_SHORT = "too_short"
    AUTHENTICATION = "authentication"
    RSA_DECRYPTION = "rsa_decryption"


class KeyTypeCannot(errors.InvalidKeyUsage):
    """The key's type does not offer the operation (e.g. encrypting with an
    ed25519 key)."""

    code = "key_type_cannot"

    def __init__(self, key_type: str, what: str) -> None:
        super().__init__(f"message {what} not supported for key type {key_type}")
        self.key_type, self.what = key_type, what


class ItemFailed(errors.InvalidRequest):
    """A single-item call whose item failed: the adapter words the Failure."""

    code = "item_failed"

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.value)
        self.failure = failure


class Item:
    """One item as the rules read it: the version it asks for (encrypt: 0 =
    latest) or was sealed under (decrypt), its associated data and context
    (decoded), the payload (plaintext, or nonce || ciphertext || tag) in
    whatever form the reader produced, and a reader's failure text if the
    item could not be read at all."""

    __slots__ = ("version", "aad", "context", "data", "unreadable")

    def __init__(self, data: Any = b"", version: int = 0, aad: bytes = b"", context: bytes = b"",
                 unreadable: Optional[str] = None) -> None:
        self.data, self.version, self.aad, self.context = data, version, aad, context
        self.unreadable = unreadable


class Outcome:
    """One item's result: the value (sealed body or plaintext), the version
    used, or why it failed (a Failure, or the reader's text)."""

    __slots__ = ("value", "version", "failure")

    def __init__(self, value: Any = None, version: int = 0,
                 failure: Union[None, Failure, str] = None) -> None:
        self.value, self.version, self.failure = value, version, failure


class Plan:
    """The rules' verdict on a request: the key, its settings and type, the
    version of every item that passed (failed: a Failure or reader text in
    `failures`), and the passing items grouped by version when the engine
    can take each group in one call."""

    __slots__ = ("record", "settings", "key_type", "versions", "failures", "groups", "batched")

    def __init__(self, record: Record, s: Dict[str, Any], key_type: KeyType, count: int) -> None:
        self.record, self.settings, self.key_type = record, s, key_type
        self.versions: List[int] = [0] * count
        self.failures: Dict[int, Union[Failure, str]] = {}
        self.groups: Dict[int, List[int]] = {}
        # Every passing item is in a version group the engine serves whole.
        self.batched = one_key_per_version(s)

    @property
    def key_id(self) -> str:
        return str(self.record["id"])

    def fail(self, i: int, why: Union[Failure, str]) -> None:
        self.failures[i] = why

    def passed(self, i: int, version: int) -> None:
        self.versions[i] = version
        if self.batched:
            self.groups.setdefault(version, []).append(i)


def encryption_version(record: Record, s: Dict[str, Any], requested: int) -> Union[int, Failure]:
    """The version to seal with; requested 0 means the latest (which
    min_encryption_version does not limit: it limits explicit versions)."""
    if requested < 0:
        return Failure.VERSION_NEGATIVE
    if requested > record["latest"]:
        return Failure.VERSION_ABOVE_LATEST
    if requested == 0:
        return int(record["latest"])
    if s["min_encryption_version"] and requested < s["min_encryption_version"]:
        return Failure.VERSION_BELOW_MIN_ENCRYPTION
    if requested < s["min_decryption_version"]:
        return Failure.VERSION_RETIRED
    return requested


def decryption_version(record: Record, s: Dict[str, Any], version: int) -> Union[int, Failure]:
    """A version a ciphertext names (0 is read as 1, as Vault does) must
    exist and not be below min_decryption_version."""
    version = max(version, 1)
    if version > record["latest"]:
        return Failure.CIPHERTEXT_TOO_NEW
    if version < s["min_decryption_version"]:
        return Failure.CIPHERTEXT_TOO_OLD
    return version


def _check_type(record: Record, s: Dict[str, Any], what: str, raw_aes: bool) -> KeyType:
    meta = key_type(record)  # the type's operations, as the key's usage allows them
    if not (meta.blob_ready if raw_aes else meta.encrypts):
        raise KeyTypeCannot(s["type"], what)
    return meta


def _start(record: Record, state: str, what: str, count: int, raw_aes: bool) -> Plan:
    """The request-level rules, which raise: the state, then the type.
    raw_aes: the scheme seals with the version's AES material itself (the
    Tencent CiphertextBlob), so only AES-GCM keys serve and the key's
    derivation setting (a transit scheme) does not apply."""
    check_state(record, state)
    s = settings(record)
    if raw_aes:
        s = {**s, "derived": False}
    return Plan(record, s, _check_type(record, s, what, raw_aes), count)


Verdict = Union[int, Failure, str]  # the version an item uses, or why it fails


def _judged(plan: Plan, items: Sequence[Item], judge: Callable[[Item], Verdict]) -> Plan:
    for i, item in enumerate(items):
        verdict = judge(item)
        if isinstance(verdict, int):
            plan.passed(i, verdict)
        else:
            plan.fail(i, verdict)
    return plan


def plan_encrypt(record: Record, items: Sequence[Item], state: str = "encrypt",
                 raw_aes: bool = False) -> Plan:
    plan = _start(record, state, "encryption", len(items), raw_aes)
    s, rsa = plan.settings, plan.key_type.kind in RSA_BITS

    def judge(item: Item) -> Verdict:
        if item.unreadable is not None:
            return item.unreadable
        version = encryption_version(record, s, item.version)
        if isinstance(version, Failure):
            return version
        if rsa and item.aad:
            return Failure.AAD_NOT_SUPPORTED
        if rsa and len(item.data) > oaep_sha256_limit(plan.key_type.kind):
            return Failure.PLAINTEXT_TOO_LONG
        return Failure.MISSING_CONTEXT if s["derived"] and not item.context else version

    return _judged(plan, items, judge)


def plan_decrypt(record: Record, items: Sequence[Item], raw_aes: bool = False) -> Plan:
    plan = _start(record, "decrypt", "decryption", len(items), raw_aes)
    s = plan.settings

    def judge(item: Item) -> Verdict:
        # A version read from the ciphertext is judged first, even when the
        # rest of the item cannot be read (as OpenBao does); -1: none read.
        version = decryption_version(record, s, item.version) if item.version >= 0 else 0
        if isinstance(version, Failure):
            return version
        if item.unreadable is not None:
            return item.unreadable
        return Failure.MISSING_CONTEXT if s["derived"] and not item.context else version

    return _judged(plan, items, judge)


def plan_uniform(record: Record, version: int, sealing: bool) -> Plan:
    """A batch whose items carry nothing but their payload, under one
    version (a native reader's shape): the same rules, judged once, on one
    item that stands for all of them (the plan's item 0)."""
    items = [Item(version=version)]
    return plan_encrypt(record, items) if sealing else plan_decrypt(record, items)


GroupExecutor = Callable[[Plan, int, List[int], Sequence[Item], List[Outcome]], None]
ItemExecutor = Callable[[Plan, int, Item], Union[bytes, Failure]]


class Crypto:
    """Executes plans with the key service's keys."""

    def __init__(self, keys: KeyService, policies: PolicyService,
                 lookup: Callable[[str], Optional[Record]]) -> None:
        self.keys = keys
        self.policies = policies
        self.lookup = lookup

    # ---- the key and the policy ----------------------------------------------

    def key_for(self, account: Dict[str, Any], name: str, actions: Union[str, Sequence[str]]
                ) -> Optional[Record]:
        """The named key once the account may run every one of `actions` on
        it (None: no such key, and the account may run them on the name it
        would have). Checked before existence, so a denied caller cannot
        probe for key names."""
        record = self.lookup(name)
        self.authorize(account, actions, name, record)
        return record

    def authorize(self, account: Dict[str, Any], actions: Union[str, Sequence[str]],
                  name: Optional[str], record: Optional[Record]) -> None:
        if record is not None:
            resource = key_resource(record)
        else:
            resource = alias_resource(name) if name else ANY
        wanted = (actions,) if isinstance(actions, str) else tuple(actions)
        self.policies.check(account, [(wanted, resource)])

    # ---- executors -------------------------------------------------------------

    def box(self, plan: Plan, version: int) -> AESGCM:
        return self.keys.box(plan.key_id, version)

    def seal(self, plan: Plan, items: Sequence[Item]) -> List[Outcome]:
        """Every passing item sealed: value = nonce || ciphertext || tag (RSA:
        the OAEP ciphertext)."""
        return self.execute(plan, items, self._seal_group, self._seal_one)

    def open(self, plan: Plan, items: Sequence[Item]) -> List[Outcome]:
        """Every passing item opened: value = the plaintext."""
        return self.execute(plan, items, self._open_group, self._open_one)

    @staticmethod
    def execute(plan: Plan, items: Sequence[Item], group: "GroupExecutor",
                one: Optional["ItemExecutor"] = None) -> List[Outcome]:
        """Run a plan: group(plan, version, members, items, outcomes) for
        each version group of a batched plan, else one(plan, version, item)
        for each passing item. Native readers' executors come in here too."""
        out = [Outcome(version=v) for v in plan.versions]
        for i, why in plan.failures.items():
            out[i].failure = why
        if plan.batched:
            for version, members in plan.groups.items():
                group(plan, version, members, items, out)
            return out
        for i, item in enumerate(items):
            if i not in plan.failures and one is not None:
                result = one(plan, plan.versions[i], item)
                if isinstance(result, Failure):
                    out[i].failure = result
                else:
                    out[i].value = result
        return out

    def _version_box(self, plan: Plan, version: int, members: List[int], out: List[Outcome]
                     ) -> Optional[AESGCM]:
        try:
            return self.box(plan, version)
        except errors.KMSError:  # the version was trimmed since the plan was made
            for i in members:
                out[i].failure = Failure.VERSION_GONE
            return None

    def _seal_group(self, plan: Plan, version: int, members: List[int], items: Sequence[Item],
                    out: List[Outcome]) -> None:
        box = self._version_box(plan, version, members, out)
        if box is None:
            return
        if len(members) == 1:  # one call, without the batch bookkeeping
            item = items[members[0]]
            nonce = os.urandom(NONCE_SIZE)
            out[members[0]].value = nonce + box.encrypt(nonce, item.data, item.aad)
            return
        sealed = box.encrypt_batch(None, [items[i].data for i in members], [items[i].aad for i in members],
                                   nonce_prefix=True)
        for j, i in enumerate(members):
            out[i].value = sealed[j]

    def _open_group(self, plan: Plan, version: int, members: List[int], items: Sequence[Item],
                    out: List[Outcome]) -> None:
        """Readers hand on only items of at least a nonce; shorter than a
        nonce and a tag, an item fails authentication like any other."""
        box = self._version_box(plan, version, members, out)
        if box is None:
            return
        if len(members) == 1:
            item = items[members[0]]
            try:
                out[members[0]].value = box.decrypt(item.data[:NONCE_SIZE], item.data[NONCE_SIZE:], item.aad)
            except InvalidTag:
                out[members[0]].failure = Failure.AUTHENTICATION
            return
        opened = box.decrypt_batch([items[i].data[:NONCE_SIZE] for i in members],
                                   [items[i].data[NONCE_SIZE:] for i in members],
                                   [items[i].aad for i in members])
        for j, i in enumerate(members):
            plain = opened[j]
            if plain is None:
                out[i].failure = Failure.AUTHENTICATION
            else:
                out[i].value = plain

    # ---- one item at a time: derived, ChaCha20-Poly1305 and RSA keys ------------

    def _cipher(self, plan: Plan, version: int, context: bytes) -> Tuple[Any, Optional[bytes]]:
        """The AEAD for a version (derived per context if the key is), and
        the convergent HMAC key when convergent encryption is on."""
        s, kind = plan.settings, plan.key_type.kind
        material = self.keys.material(plan.key_id, version)
        cipher = CIPHERS[kind]
        if not s["derived"]:
            return cipher(material), None
        size = plan.key_type.size
        convergent = bool(s["convergent_encryption"])
        derived = HKDF(hashes.SHA256(), size + 32 if convergent else size, None, context).derive(material)
        return cipher(derived[:size]), derived[size:] if convergent else None

    def _private(self, plan: Plan, version: int) -> Any:
        return self.keys.private_key(plan.key_id, version, plan.key_type.kind)

    def _seal_one(self, plan: Plan, version: int, item: Item) -> Union[bytes, Failure]:
        try:
            if plan.key_type.kind in RSA_BITS:
                return bytes(self._private(plan, version).public_key().encrypt(item.data, _oaep()))
            cipher, convergent = self._cipher(plan, version, item.context)
        except errors.KMSError:
            return Failure.VERSION_GONE
        size = NONCE_SIZES[plan.key_type.kind]
        nonce = (hmac.new(convergent, item.data, hashlib.sha256).digest()[:size]
                 if convergent else os.urandom(size))
        return nonce + bytes(cipher.encrypt(nonce, item.data, item.aad or None))

    def _open_one(self, plan: Plan, version: int, item: Item) -> Union[bytes, Failure]:
        try:
            if plan.key_type.kind in RSA_BITS:
                private = self._private(plan, version)
            else:
                cipher, _ = self._cipher(plan, version, item.context)
        except errors.KMSError:
            return Failure.VERSION_GONE
        if plan.key_type.kind in RSA_BITS:
            try:
                return bytes(private.decrypt(item.data, _oaep()))
            except ValueError:
                return Failure.RSA_DECRYPTION
        size = NONCE_SIZES[plan.key_type.kind]
        try:
            return bytes(cipher.decrypt(item.data[:size], item.data[size:], item.aad or None))
        except InvalidTag:
            return Failure.AUTHENTICATION


class Blobs:
    """Tencent's CiphertextBlob scheme (kms.keys.blob) on the same plans:
    AES-GCM (SM4-GCM for SM4 keys) under the version's material, the blob
    header and the canonical EncryptionContext as associated data."""

    def __init__(self, keys: KeyService, crypto: Crypto) -> None:
        self.keys, self.crypto = keys, crypto

    def encrypt(self, key_id: str, plaintext: bytes, context: Optional[str] = None,
                state: str = "encrypt") -> str:
        if len(plaintext) > MAX_PLAINTEXT:
            raise errors.InvalidPlaintext(f"Plaintext is over {MAX_PLAINTEXT} bytes")
        aad_context = blob_format.canonical_context(context)
        item = Item(plaintext)
        plan = plan_encrypt(self.keys.record(key_id), [item], state, raw_aes=True)
        version, fmt = plan.versions[0], BLOB_FORMATS[plan.key_type.kind]
        item.aad = blob_format.header_for(key_id, version, fmt) + aad_context
        outcome = self.crypto.seal(plan, [item])[0]
        if outcome.failure is not None:
            raise blob_format.InvalidCiphertext("the key version to encrypt with no longer exists")
        sealed = outcome.value
        return blob_format.Blob(key_id, version, sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], fmt).encode()

    def decrypt(self, ciphertext: str, context: Optional[str] = None) -> Tuple[str, bytes]:
        """Returns (key id, plaintext). A damaged blob, a foreign blob or a
        wrong context are all InvalidCiphertext, with no further detail."""
        blob = blob_format.decode(ciphertext)
        aad_context = blob_format.canonical_context(context)
        record = self.keys.store.get("key", blob.key_id)
        if record is None:
            raise errors.KeyNotFound(f"key {blob.key_id} does not exist")
        item = Item(blob.nonce + blob.sealed, blob.version, blob.header + aad_context)
        plan = plan_decrypt(record, [item], raw_aes=True)
        if blob.fmt != BLOB_FORMATS[plan.key_type.kind]:  # sealed by another cipher than the key's
            raise blob_format.InvalidCiphertext("CiphertextBlob does not decrypt (damaged, or the EncryptionContext differs)")
        if blob.version < 1 or 0 in plan.failures:
            raise blob_format.InvalidCiphertext("CiphertextBlob names a key version that does not exist")
        outcome = self.crypto.open(plan, [item])[0]
        if outcome.failure is Failure.VERSION_GONE:
            raise blob_format.InvalidCiphertext("the key version of this ciphertext no longer exists")
        if outcome.failure is not None:
            raise blob_format.InvalidCiphertext(
                "CiphertextBlob does not decrypt (damaged, or the EncryptionContext differs)")
        return blob.key_id, outcome.value

    def reencrypt(self, ciphertext: str, destination_key_id: Optional[str] = None,
                  source_context: Optional[str] = None,
                  destination_context: Optional[str] = None) -> Tuple[str, str, str, bool]:
        """Returns (new blob, destination key id, source key id, re-encrypted?)."""
        source_key_id, plaintext = self.decrypt(ciphertext, source_context)
        destination = destination_key_id or source_key_id
        record = self.keys.record(destination)
        if (destination == source_key_id and blob_format.decode(ciphertext).version == record["latest"]
                and blob_format.canonical_context(source_context)
                == blob_format.canonical_context(destination_context)):
            return ciphertext, destination, source_key_id, False
        return (self.encrypt(destination, plaintext, destination_context), destination,
                source_key_id, True)

    def generate_data_key(self, key_id: str, number_of_bytes: int,
                          context: Optional[str] = None) -> Tuple[bytes, str]:
        """A fresh data key: (plaintext, the same encrypted under the CMK)."""
        if not 1 <= number_of_bytes <= 1024:
            raise errors.InvalidParameter("NumberOfBytes must be 1 to 1024")
        data_key = os.urandom(number_of_bytes)
        return data_key, self.encrypt(key_id, data_key, context, state="generate_data_key")


def _oaep() -> Any:
    return RSA_PADDINGS["rsa-oaep-sha256"]()  # transit's RSA encryption, as Vault's
