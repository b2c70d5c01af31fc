"""What each Tencent action acts on, read once for both the policy check and
the handler.

Every action names a target reader. The reader reads the parameters that
say what the action touches (KeyId, KeyIds, CiphertextBlob, Alias, ...) and
returns two things: the value the handler acts on, and the checks (the
actions needed on each resource). The endpoint checks them against the
caller's policies and then hands the handler that same value, so what is
authorized and what is acted on cannot drift apart: no other field (a
stray KeyIds beside a KeyId, say) can stand in for the target.

A key is named both key/<id> and alias/<alias>; actions about no key
(listing, random bytes, service status) touch "*". Unknown keys are checked
by id alone, so a refused caller learns nothing about whether a key exists.
"""
from typing import Any, Callable, Dict, List, Optional, Tuple

from kms.api.tencent.params import Params
from kms.keys import blob as blobs
from kms.service.keys import SERVICE_ALIAS_PREFIX
from kms.service.policies import (ANY, REENCRYPT_DESTINATION, REENCRYPT_SOURCE, Check,
                                  Resource, alias_resource, key_resource,
                                  unknown_key)
from kms.service.services import Services


class Context:
    """The services and the caller an action runs with."""

    __slots__ = ("services", "keys", "accounts", "policies", "imports", "blobs", "caller")

    def __init__(self, services: Services, caller: Dict[str, Any]) -> None:
        self.services, self.caller = services, caller
        self.keys, self.accounts, self.policies = services.keys, services.accounts, services.policies
        self.imports, self.blobs = services.imports, services.blobs



# A key id is a 36-character UUID or service/NAME (at most 68); longer is
# no key, refused before it reaches a message or a lookup.
MAX_KEY_ID_CHARS = 128
MAX_BLOB_CHARS = 8192  # a blob of 4096 bytes of plaintext is 5,528
MAX_ALIAS_CHARS = 60

# (value for the handler, the checks to pass first)
Targets = Tuple[Any, List[Check]]
TargetReader = Callable[[Context, Params, str], Targets]


def key_named(ctx: Context, key_id: str) -> Resource:
    """The resource a KeyId names: a key, a service alias not created yet
    (owned in advance only by the service of that name), or an unknown id."""
    if key_id.startswith(SERVICE_ALIAS_PREFIX):
        holder = ctx.keys.store.get("alias", key_id)
        record = ctx.keys.store.get("key", holder) if holder else None
        if record is None:
            caller = ctx.caller
            own = (caller["kind"] == "service"
                   and key_id[len(SERVICE_ALIAS_PREFIX):] == caller["name"])
            return alias_resource(key_id, caller["secret_id"] if own else None)
    else:
        record = ctx.keys.store.get("key", key_id)
    if record is None:
        return unknown_key(key_id)
    return key_resource(record)


def _key_id(p: Params, name: str = "KeyId") -> str:
    return p.str(name, required=True, max_chars=MAX_KEY_ID_CHARS,
                 code="InvalidParameterValue.InvalidKeyId")


def _alias(p: Params) -> str:
    return p.str("Alias", required=True, max_chars=MAX_ALIAS_CHARS,
                 code="InvalidParameterValue.InvalidAlias")


def _blob(p: Params) -> str:
    return p.str("CiphertextBlob", required=True, max_chars=MAX_BLOB_CHARS,
                 code="InvalidParameterValue.InvalidCiphertext")


def keyless(ctx: Context, p: Params, action: str) -> Targets:
    return None, [([action], ANY)]


def one_key(ctx: Context, p: Params, action: str) -> Targets:
    key_id = _key_id(p)
    return key_id, [([action], key_named(ctx, key_id))]


def many_keys(ctx: Context, p: Params, action: str) -> Targets:
    key_ids = p.str_list("KeyIds", required=True, max_chars=MAX_KEY_ID_CHARS)
    return key_ids, [([action], key_named(ctx, k)) for k in key_ids]


def new_key(ctx: Context, p: Params, action: str) -> Targets:
    alias = _alias(p)
    return alias, [([action], alias_resource(alias))]


def renamed_key(ctx: Context, p: Params, action: str) -> Targets:
    """UpdateAlias: allowed on the key, and on the name it takes (a name the
    caller could not create a key under is not hers to rename to)."""
    key_id, alias = _key_id(p), _alias(p)
    return (key_id, alias), [([action], key_named(ctx, key_id)), ([action], alias_resource(alias))]


def blob_key(ctx: Context, p: Params, action: str) -> Targets:
    """Decrypt: the key the blob's header names. A blob that does not parse
    is refused here (InvalidCiphertext says nothing about any key)."""
    text = _blob(p)
    return text, [([action], key_named(ctx, blobs.decode(text).key_id))]


def reencryption(ctx: Context, p: Params, action: str) -> Targets:
    """ReEncrypt: reads the source (ReEncrypt and Decrypt on its key) and
    encrypts to the destination (ReEncrypt and Encrypt), by default the
    source key again."""
    text = _blob(p)
    source = blobs.decode(text).key_id
    destination: Optional[str] = p.str("DestinationKeyId", max_chars=MAX_KEY_ID_CHARS,
                                       code="InvalidParameterValue.InvalidKeyId") or None
    checks: List[Check] = [(REENCRYPT_SOURCE, key_named(ctx, source)),
                           (REENCRYPT_DESTINATION, key_named(ctx, destination or source))]
    return (text, destination), checks
