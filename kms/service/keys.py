"""KeyService: customer master keys, their lifecycle and versions, and the
unwrapped keys of those versions (kms.service.crypto uses them). Protocol
adapters call this; it never sees HTTP.

Records in the store (namespace / id -> value):
    key   / <key id>              metadata (a dict, see _new_record)
    ver   / <key id>/<version>    {"wrapped": AES-GCM of the material under the
                                   root key, bound to key id and version, "created"}
    alias / <alias>               <key id> (uniqueness and lookup)

Every change is one store commit whose preconditions are checked on the
latest state under the store's lock, so concurrent workers cannot both
succeed where only one may.
"""
import os
import re
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple, cast


from kms import errors
from kms.aead import AESGCM
from kms.clock import Clock
from kms.keys import blob as blobs
from kms.keys import material as materials
from kms.rootkey import Wrapper
from kms.service.keytypes import KEY_TYPES, MANAGED_BY_TRANSIT, USAGE_SYMMETRIC, USAGE_TABLE, USAGES, usage_of
from kms.store import LogStore, Op

ENABLED, DISABLED, PENDING_DELETE, PENDING_IMPORT, ARCHIVED = (
    "Enabled", "Disabled", "PendingDelete", "PendingImport", "Archived")
STATES = (ENABLED, DISABLED, PENDING_DELETE, PENDING_IMPORT, ARCHIVED)
KNOWN_USAGES = USAGES
ORIGIN_KMS, ORIGIN_EXTERNAL = "TENCENT_KMS", "EXTERNAL"
DAY = 86400

MAX_PLAINTEXT = 4096
MANUAL_ROTATION_INTERVAL = DAY  # the real service's default limit
# Aliases of service-managed keys: service/NAME, created on first use.
SERVICE_ALIAS_PREFIX = "service/"
MAX_DESCRIPTION_BYTES = 1024
ALIAS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,59}\Z")  # \Z: "$" also matches before a final "\n"

# What each operation allows per key state (spec/tencent-kms-api.md,
# section 3.2; "inferred" rows follow its advice): "ok", or the error, by
# the short names below. One row an operation, one column a state.
_STATE_TABLE = """
operation          Enabled   Disabled  PendingDelete  PendingImport  Archived
encrypt            ok        disabled  state          state          archived
generate_data_key  ok        disabled  pending        state          archived
decrypt            ok        disabled  state          state          ok
update             ok        ok        state          ok             ok
enable             ok        ok        state          state          state
disable            ok        ok        state          state          state
schedule_deletion  enabled   ok        state          ok             state
cancel_deletion    unpending unpending ok             unpending      unpending
rotation_config    ok        ok        state          state          state
rotate             ok        state     state          state          state
archive            ok        state     state          state          ok
cancel_archive     state     state     state          state          ok
import             ok        state     state          ok             state
delete_material    ok        ok        state          ok             state
asymmetric         ok        state     state          state          state
bind               ok        ok        state          ok             state
unbind             ok        ok        ok             ok             ok
"""
_STATE_ERRORS: Dict[str, Optional[type]] = {
    "ok": None, "state": errors.KeyStateError, "disabled": errors.KeyDisabled,
    "archived": errors.KeyArchived, "pending": errors.KeyPendingDelete,
    "enabled": errors.KeyShouldBeDisabled, "unpending": errors.KeyNotPendingDelete}


def _state_rules(table: str) -> Dict[str, Dict[str, Optional[type]]]:
    header, *rows = [line.split() for line in table.strip().splitlines()]
    if tuple(header[1:]) != STATES:
        raise ValueError("the state table's columns are not the states")
    return {row[0]: {state: _STATE_ERRORS[cell] for state, cell in zip(STATES, row[1:])}
            for row in rows}


# "asymmetric" is every use of an asymmetric key (its public key, signing,
# verifying, decrypting): Enabled only (spec 3.2, last paragraph).
# operation -> state -> None (allowed) or the error class.
STATE_RULES = _state_rules(_STATE_TABLE)
# Operations a service-managed key refuses (it can be queried and rotated).
USER_KEY_ONLY = {"disable", "schedule_deletion", "archive", "cancel_archive", "update"}
# Operations a key bound to a cloud resource refuses (spec 3.4); transit's
# immediate deletion is refused the same way (check_unbound).
BOUND_REFUSES = {"disable", "archive", "schedule_deletion", "delete_material"}
DEFAULT_KEY_LIMIT = 100_000  # keys of every kind in one store (GetServiceStatus' CmkLimit)
SYMMETRIC_CIPHERS = {"aes": 32, "sm4": 16}  # the cipher of new symmetric CMKs -> material bytes
MAX_PRODUCT_ID_CHARS, MAX_RESOURCE_ID_CHARS = 64, 256
BINDING_ID_RE = re.compile(r"[\x21-\x7e]+\Z")  # printable ASCII, no spaces


def owner_account(record: Dict[str, Any]) -> Optional[str]:
    """The SecretId of the service account that owns a service-managed key,
    or None for a customer key. Ownership is an account id, never a name:
    "owner" is only what the API shows ("user", or the service's name), and
    an account may be named anything, "user" included."""
    if "owner_id" in record:
        return cast(Optional[str], record["owner_id"])
    # Keys made before owner_id: a service key's creator is its service.
    return None if record["owner"] == "user" else record.get("creator")


# Uses of a key, refused while it is soft-deleted (transit's soft-delete).
KEY_USES = {"encrypt", "generate_data_key", "decrypt", "asymmetric", "use"}


def check_state(record: Dict[str, Any], operation: str) -> None:
    if operation in KEY_USES and record.get("soft_deleted"):
        raise errors.KeySoftDeleted("refusing to use soft-deleted key")
    if operation == "use":  # any use of a key the state table does not name (HMAC, verify, export)
        return
    # Ownership first: a service-managed key refuses these in every state.
    if operation in USER_KEY_ONLY and owner_account(record) is not None:
        raise errors.NotUserCreatedKey(
            f"key {record['id']} is managed by service {record['owner']!r}; {operation.replace('_', ' ')} is not allowed")
    if operation in BOUND_REFUSES:
        check_unbound(record)
    error = STATE_RULES[operation][record["state"]]
    if error is not None:
        raise error(f"key {record['id']} is {record['state']}; {operation.replace('_', ' ')} is not allowed")


def check_unbound(record: Dict[str, Any]) -> None:
    """A key a cloud resource uses cannot be disabled, archived or deleted,
    nor lose its material, until every binding is removed."""
    if record.get("bindings"):
        product, resource = record["bindings"][0]
        raise errors.KeyInUse(f"key {record['id']} is bound to {product} resource {resource!r} "
                              f"({len(record['bindings'])} binding(s)); unbind it first")


def _binding(product: Any, resource: Any) -> List[str]:
    """A (ProductId, ResourceId) pair, each checked, as a binding is stored."""
    for value, name, most in ((product, "ProductId", MAX_PRODUCT_ID_CHARS),
                              (resource, "ResourceId", MAX_RESOURCE_ID_CHARS)):
        if not isinstance(value, str) or not BINDING_ID_RE.match(value) or len(value) > most:
            raise errors.InvalidParameter(f"{name} must be 1 to {most} printable ASCII characters without spaces")
    return [product, resource]


def _check_rotatable(record: Dict[str, Any]) -> None:
    """Asymmetric CMKs do not rotate (spec 3.5): a new version would change
    the public key the key's users hold. Keys transit made rotate as
    transit's do."""
    if usage_of(record).asymmetric and record.get("managed_by") != MANAGED_BY_TRANSIT:
        raise errors.RotateNotSupported(f"key {record['id']} is asymmetric ({record['usage']}); "
                                        "asymmetric keys do not rotate")


def check_key_id(key_id: Any) -> str:
    if not isinstance(key_id, str) or not key_id:
        raise errors.InvalidKeyId("KeyId must be a non-empty string")
    try:
        if str(uuid.UUID(key_id)) != key_id:
            raise ValueError
    except ValueError:
        # Quoted at most 64 characters: a huge id is not echoed back whole.
        raise errors.InvalidKeyId(f"KeyId {key_id[:64]!r} is not a key id (lowercase UUID)") from None
    return key_id


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise errors.InvalidAlias(
            "Alias must be 1 to 60 characters of A-Z a-z 0-9 - _, starting with a letter or digit")
    return alias


def check_description(description: Any) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise errors.InvalidParameter("Description must be a string")
    try:
        size = len(description.encode())
    except UnicodeEncodeError:  # a lone surrogate: not text that can be stored
        raise errors.InvalidParameter("Description must be valid Unicode") from None
    if size > MAX_DESCRIPTION_BYTES:
        raise errors.InvalidParameter(f"Description is over {MAX_DESCRIPTION_BYTES} bytes")
    return description


class KeyService:
    def __init__(self, store: LogStore, wrapper: Wrapper, clock: Optional[Clock] = None,
                 creator_uin: int = 1, key_limit: int = DEFAULT_KEY_LIMIT, symmetric: str = "aes") -> None:
        """symmetric: the cipher of new ENCRYPT_DECRYPT CMKs, "aes" (AES-256,
        as Tencent's FIPS regions) or "sm4" (as its SM regions)."""
        if symmetric not in SYMMETRIC_CIPHERS:
            raise ValueError(f"symmetric must be one of {', '.join(SYMMETRIC_CIPHERS)}")
        self.store = store
        self.key_limit = key_limit
        self.symmetric = symmetric
        self.wrapper = wrapper
        self.clock = clock or Clock()
        self.creator_uin = creator_uin
        # Unwrapped key versions, ready to use: (key id, version) -> AESGCM.
        self._boxes: Dict[Tuple[str, int], AESGCM] = {}
        # Other objects made from a version's material (loaded private keys):
        # (key id, version) -> {kind: object}. Dropped with the boxes.
        self._made: Dict[Tuple[str, int], Dict[str, Any]] = {}
        store.listeners.append(self._forget_versions)

    # ---- plumbing ----------------------------------------------------------

    def _forget_versions(self, op: Op) -> None:
        # Dropped AESGCM objects free (and wipe) their C key contexts.
        if op.op == "reset":
            self._boxes.clear()
            self._made.clear()
        elif op.namespace == "ver" and op.op == "del":
            key_id, _, version = op.id.rpartition("/")
            self._boxes.pop((key_id, int(version)), None)
            self._made.pop((key_id, int(version)), None)

    def record(self, key_id: str) -> Dict[str, Any]:
        record: Optional[Dict[str, Any]] = self.store.get("key", check_key_id(key_id))
        if record is None:
            raise errors.KeyNotFound(f"key {key_id} does not exist")
        return record

    def material(self, key_id: str, version: int) -> bytes:
        """A version's key material, unwrapped (for key derivation)."""
        entry = self.store.get("ver", f"{key_id}/{version}")
        if entry is None:
            raise blobs.InvalidCiphertext("that key version no longer exists")
        return self.wrapper.unwrap("key", key_id, version, entry["wrapped"])

    def made_from(self, key_id: str, version: int, kind: str, make: Callable[[bytes], Any]) -> Any:
        """make(material) for a version, made once and kept until the version
        goes (for objects as costly to build as an RSA key is to load)."""
        made = self._made.setdefault((key_id, version), {})
        if kind not in made:
            made[kind] = make(self.material(key_id, version))
        return made[kind]

    def private_key(self, key_id: str, version: int, kind: str) -> Any:
        """A version's private key object; loading (and checking) an RSA key
        costs tens of milliseconds, so it is made once."""
        return self.made_from(key_id, version, "private:" + kind,
                              lambda material: materials.private_key(kind, material))

    def box(self, key_id: str, version: int) -> AESGCM:
        """The version's AES-GCM key, unwrapped once and kept until the
        version goes."""
        box = self._boxes.get((key_id, version))
        if box is None:
            entry = self.store.get("ver", f"{key_id}/{version}")
            if entry is None:
                raise blobs.InvalidCiphertext("the key version of this ciphertext no longer exists")
            material = self.wrapper.unwrap("key", key_id, version, entry["wrapped"])
            box = self._boxes[(key_id, version)] = AESGCM(material)
        return box

    def change(self, key_id: str, operation: str,
                mutate: Callable[[Dict[str, Any]], List[Op]], compact: bool = False) -> Dict[str, Any]:
        """Check the state rule and apply mutate() to a copy of the record,
        all under the store lock on the latest state (compact: see
        LogStore.commit)."""
        out: Dict[str, Any] = {}

        def build() -> List[Op]:
            record = dict(self.record(key_id))
            check_state(record, operation)
            extra = mutate(record)
            out.update(record)
            return [Op("put", "key", key_id, record)] + extra

        self.store.commit(build, compact=compact)
        return out

    def version_ops(self, key_id: str, version: int, material: bytes,
                         created: Optional[int] = None) -> List[Op]:
        wrapped = self.wrapper.wrap("key", key_id, version, material)
        return [Op("put", "ver", f"{key_id}/{version}",
                   {"wrapped": wrapped, "created": self.clock.now_s() if created is None else created})]

    # ---- lifecycle ---------------------------------------------------------

    def create_key(self, alias: str, description: str = "", usage: str = USAGE_SYMMETRIC,
                   external: bool = False, tags: Optional[Dict[str, str]] = None,
                   creator: str = "root") -> Dict[str, Any]:
        """A customer-managed key (owner "user")."""
        return self.create_record(check_alias(alias), description, usage, external, tags,
                            owner="user", creator=creator)

    def create_with_versions(self, alias: str, description: str, usage: str, creator: str,
                             material_bytes: int, extra: Dict[str, Any],
                             versions: Dict[int, Tuple[bytes, int]]) -> Dict[str, Any]:
        """A customer key whose versions are given ({version: (material,
        created)}, e.g. a restored backup), in one commit: either the key
        exists with all of them, or nothing was stored."""
        if not versions or min(versions) < 1:
            raise errors.InvalidParameter("a key needs versions numbered from 1")
        return self.create_record(alias, description, usage, False, {}, owner="user", creator=creator,
                            material_bytes=material_bytes, extra=extra, versions=versions)

    def create_record(self, alias: str, description: str, usage: str, external: bool,
                tags: Optional[Dict[str, str]], owner: str, creator: str,
                material_bytes: int = 32, extra: Optional[Dict[str, Any]] = None,
                owner_id: Optional[str] = None,
                versions: Optional[Dict[int, Tuple[bytes, int]]] = None) -> Dict[str, Any]:
        description = check_description(description)
        if usage not in KNOWN_USAGES:
            raise errors.UnsupportedOperation(f"KeyUsage {usage} is not offered")
        made = KEY_TYPES[USAGE_TABLE[usage].key_type]
        if usage == USAGE_SYMMETRIC and "material_kind" not in (extra or {}) and self.symmetric != "aes":
            # A CMK of this server's symmetric cipher (transit passes its own kind).
            extra = {"material_kind": self.symmetric, **(extra or {})}
            material_bytes = SYMMETRIC_CIPHERS[self.symmetric]
        if made.asymmetric and external:
            raise errors.UnsupportedOperation("imported material (Type 2) is offered for symmetric keys only")
        if made.asymmetric:  # the private key is made here; its size is its kind's
            extra = {"material_kind": made.kind, **(extra or {})}
            material_bytes = 0
        key_id = str(uuid.uuid4())
        precise = self.clock.now()
        now = int(precise)
        record = {
            "id": key_id, "alias": alias, "description": description, "created": now,
            # CreateTime is whole seconds; listing order needs finer time.
            "created_precise": precise,
            "state": PENDING_IMPORT if external else ENABLED, "usage": usage,
            "origin": ORIGIN_EXTERNAL if external else ORIGIN_KMS, "owner": owner,
            "creator": creator, "rotation_enabled": False, "rotate_days": 365,
            "next_rotate": 0, "last_rotate": 0, "deletion_date": 0, "valid_to": 0,
            "tags": dict(tags or {}), "latest": 0 if external else max(versions or [1]),
            "material_bytes": material_bytes, "owner_id": owner_id, **(extra or {}),
        }

        def build() -> List[Op]:
            if self.store.get("alias", alias) is not None:
                raise errors.AliasExists(f"alias {alias!r} is already in use")
            if self.key_count() >= self.key_limit:
                raise errors.KeyLimitExceeded(f"this server holds at most {self.key_limit} keys")
            ops = [Op("put", "key", key_id, record), Op("put", "alias", alias, key_id)]
            if versions:
                for version, (material, created) in sorted(versions.items()):
                    ops += self.version_ops(key_id, version, material, created)
            elif not external:
                ops += self.version_ops(key_id, 1, materials.generate(
                    record.get("material_kind", "aes"), material_bytes))
            return ops

        self.store.commit(build)
        return dict(record)

    def resolve_service_key(self, key_id: str, account: Dict[str, Any]) -> str:
        """A key id as given, or for service/NAME the service-managed key of
        that alias: created, owned by the calling service account, the first
        time it is used. Only service NAME creates service/NAME, so no
        service can take another's name first."""
        if not key_id.startswith(SERVICE_ALIAS_PREFIX):
            return key_id
        name = key_id[len(SERVICE_ALIAS_PREFIX):]
        if not ALIAS_RE.match(name):
            raise errors.InvalidKeyId(f"{key_id!r} is not service/NAME with a valid NAME")
        holder = self.store.get("alias", key_id)
        if holder is not None:
            record = self.store.get("key", holder)
            if account["kind"] == "service" and owner_account(record) != account["secret_id"]:
                raise errors.PermissionDenied(f"{key_id} belongs to another service")
            return str(holder)
        if account["kind"] != "service":
            raise errors.KeyNotFound(f"no service-managed key {key_id} exists")
        if name != account["name"]:
            raise errors.PermissionDenied(f"only service {name!r} may create {key_id}")
        try:
            return str(self.create_record(key_id, f"managed for service {account['name']}", USAGE_SYMMETRIC,
                                    False, {}, owner=account["name"], creator=account["secret_id"],
                                    owner_id=account["secret_id"])["id"])
        except errors.AliasExists:  # another worker created it first
            return str(self.store.get("alias", key_id))

    def key_count(self) -> int:
        return len(self.store.items("key"))

    # ---- cloud resources ---------------------------------------------------

    def bind(self, key_id: str, product: str, resource: str) -> None:
        """Record that a product's resource uses the key (again: no change).
        Binding ends any expiry of imported material (spec 4.30)."""
        pair = _binding(product, resource)

        def mutate(record: Dict[str, Any]) -> List[Op]:
            bindings = [list(b) for b in record.get("bindings", [])]
            if pair not in bindings:
                bindings.append(pair)
            record.update(bindings=bindings, valid_to=0)
            return []

        self.change(key_id, "bind", mutate)

    def unbind(self, key_id: str, product: str, resource: str) -> None:
        pair = _binding(product, resource)

        def mutate(record: Dict[str, Any]) -> List[Op]:
            bindings = [list(b) for b in record.get("bindings", [])]
            if pair not in bindings:
                raise errors.BindingNotFound(f"key {key_id} is not bound to {pair[0]} resource {pair[1]!r}")
            bindings.remove(pair)
            record["bindings"] = bindings
            return []

        self.change(key_id, "unbind", mutate)

    def describe(self, key_id: str) -> Dict[str, Any]:
        return dict(self.record(key_id))

    def describe_many(self, key_ids: List[str]) -> List[Dict[str, Any]]:
        if len(set(key_ids)) != len(key_ids):
            raise errors.DuplicatedKeyId("KeyIds lists a key more than once")
        return [self.describe(k) for k in key_ids]

    def versions(self, key_id: str) -> List[Tuple[int, int]]:
        """(version, created) of each version still held, oldest first."""
        record = self.record(key_id)
        found = []
        for version in range(1, record["latest"] + 1):
            entry = self.store.get("ver", f"{key_id}/{version}")
            if entry is not None:
                found.append((version, int(entry["created"])))
        return found

    def all_keys(self) -> List[Dict[str, Any]]:
        """Every key, oldest first (stable order for listing)."""
        return sorted(self.store.items("key").values(),
                      key=lambda r: (r["created_precise"], r["id"]))

    def update_alias(self, key_id: str, alias: str) -> None:
        alias = check_alias(alias)
        old: Dict[str, str] = {}

        def mutate(record: Dict[str, Any]) -> List[Op]:
            holder = self.store.get("alias", alias)
            if holder is not None and holder != key_id:
                raise errors.AliasExists(f"alias {alias!r} is already in use")
            old["alias"] = record["alias"]
            record["alias"] = alias
            ops = [Op("put", "alias", alias, key_id)]
            if old["alias"] != alias:
                ops.append(Op("del", "alias", old["alias"]))
            return ops

        self.change(key_id, "update", mutate)

    def update_description(self, key_id: str, description: str) -> None:
        description = check_description(description)
        self.change(key_id, "update", lambda r: r.update(description=description) or [])

    def enable(self, key_id: str) -> None:
        self.change(key_id, "enable", lambda r: r.update(state=ENABLED) or [])

    def disable(self, key_id: str) -> None:
        self.change(key_id, "disable", lambda r: r.update(state=DISABLED) or [])

    def set_state_many(self, key_ids: List[str], enable: bool) -> None:
        """All keys are checked first; then all change in one commit."""
        if len(set(key_ids)) != len(key_ids):
            raise errors.DuplicatedKeyId("KeyIds lists a key more than once")
        operation = "enable" if enable else "disable"

        def build() -> List[Op]:
            ops = []
            for key_id in key_ids:
                record = dict(self.record(key_id))
                check_state(record, operation)
                record["state"] = ENABLED if enable else DISABLED
                ops.append(Op("put", "key", key_id, record))
            return ops

        self.store.commit(build)

    def schedule_deletion(self, key_id: str, days: int) -> int:
        if not isinstance(days, int) or isinstance(days, bool) or not 7 <= days <= 30:
            raise errors.InvalidPendingWindow("PendingWindowInDays must be 7 to 30")
        when = self.clock.now_s() + days * DAY
        self.change(key_id, "schedule_deletion",
                     lambda r: r.update(state=PENDING_DELETE, deletion_date=when) or [])
        return when

    def cancel_deletion(self, key_id: str) -> None:
        self.change(key_id, "cancel_deletion",
                     lambda r: r.update(state=DISABLED, deletion_date=0) or [])

    def archive(self, key_id: str) -> None:
        self.change(key_id, "archive", lambda r: r.update(state=ARCHIVED) or [])

    def cancel_archive(self, key_id: str) -> None:
        self.change(key_id, "cancel_archive", lambda r: r.update(state=ENABLED) or [])

    # ---- rotation ----------------------------------------------------------

    def enable_rotation(self, key_id: str, days: int = 365) -> None:
        if not isinstance(days, int) or isinstance(days, bool) or not 7 <= days <= 365:
            raise errors.InvalidParameter("RotateDays must be 7 to 365")

        # Origin and usage never change, so they can be checked (first: they
        # are the more specific refusals) outside the commit.
        record = self.record(key_id)
        if record["origin"] == ORIGIN_EXTERNAL:
            raise errors.ExternalKeyCannotRotate("keys with imported material cannot rotate")
        _check_rotatable(record)

        def mutate(record: Dict[str, Any]) -> List[Op]:
            base = record["last_rotate"] or record["created"]
            record.update(rotation_enabled=True, rotate_days=days,
                          next_rotate=max(base + days * DAY, self.clock.now_s()))
            return []

        self.change(key_id, "rotation_config", mutate)

    def disable_rotation(self, key_id: str) -> None:
        self.change(key_id, "rotation_config",
                     lambda r: r.update(rotation_enabled=False, next_rotate=0) or [])

    def rotate(self, key_id: str, scheduled: bool = False, manual_rules: bool = True) -> int:
        """A new version becomes the one new encryptions use; every older
        version still decrypts. Returns the new version number. A manual
        rotation (not scheduled) needs rotation enabled, and happens at most
        once per MANUAL_ROTATION_INTERVAL."""
        out: Dict[str, int] = {}
        # Origin never changes, so it is checked (first: spec 3.2 answers a
        # key awaiting its material with RotateNotSupported, not its state)
        # outside the commit.
        record = self.record(key_id)
        if record["origin"] == ORIGIN_EXTERNAL:
            raise errors.RotateNotSupported("keys with imported material cannot rotate")
        _check_rotatable(record)

        def mutate(record: Dict[str, Any]) -> List[Op]:
            now = self.clock.now_s()
            if scheduled and not (record["rotation_enabled"] and record["next_rotate"] <= now):
                return []  # another worker rotated it already
            if not scheduled and manual_rules:
                if not record["rotation_enabled"]:
                    raise errors.RotateNotSupported("RotateKey needs key rotation enabled (EnableKeyRotation)")
                last = record.get("last_manual_rotate", 0)
                if last and now - last < MANUAL_ROTATION_INTERVAL:
                    raise errors.RotateRateLimited("a key can be rotated by hand once per 24 hours")
                record["last_manual_rotate"] = now
            version = record["latest"] + 1
            record.update(latest=version, last_rotate=now)
            if record["rotation_enabled"]:
                record["next_rotate"] = now + record["rotate_days"] * DAY
            out["version"] = version
            return self.version_ops(key_id, version, materials.generate(
                record.get("material_kind", "aes"), record.get("material_bytes", 32)))

        self.change(key_id, "rotate", mutate)
        return out.get("version", 0)

    def add_version(self, key_id: str, material: bytes) -> Dict[str, Any]:
        """A new latest version of given material (transit's import_version)."""
        def mutate(record: Dict[str, Any]) -> List[Op]:
            version = record["latest"] + 1
            record.update(latest=version, last_rotate=self.clock.now_s())
            return self.version_ops(key_id, version, material)

        return self.change(key_id, "import", mutate)

    # ---- random bytes ------------------------------------------------------

    @staticmethod
    def generate_random(number_of_bytes: int) -> bytes:
        if not 1 <= number_of_bytes <= 1024:
            raise errors.InvalidParameter("NumberOfBytes must be 1 to 1024")
        return os.urandom(number_of_bytes)

    # ---- time-driven work --------------------------------------------------

    def run_due(self) -> Dict[str, List[str]]:
        """Rotations and deletions that have fallen due (also those that fell
        due while the server was down). Safe to run in every worker: each
        change re-checks that it is still due under the store lock."""
        now = self.clock.now_s()
        done: Dict[str, List[str]] = {"rotated": [], "deleted": []}
        for record in list(self.store.items("key").values()):
            if record["state"] == PENDING_DELETE and 0 < record["deletion_date"] <= now:
                if self.destroy(record["id"]):
                    done["deleted"].append(record["id"])
            elif (record["rotation_enabled"] and record["state"] == ENABLED
                  and 0 < record["next_rotate"] <= now):
                if self.rotate(record["id"], scheduled=True):
                    done["rotated"].append(record["id"])
        return done

    def destroy(self, key_id: str) -> bool:
        """End of the deletion window: the key and every wrapped version are
        removed, and the log is compacted so they are gone from disk."""
        def build() -> List[Op]:
            record = self.store.get("key", key_id)
            if record is None or record["state"] != PENDING_DELETE:
                return []
            if not 0 < record["deletion_date"] <= self.clock.now_s():
                return []
            ops = [Op("del", "key", key_id), Op("del", "alias", record["alias"])]
            ops += [Op("del", "ver", f"{key_id}/{v}") for v in range(1, record["latest"] + 1)]
            return ops

        return bool(self.store.commit(build, compact=True))

