"""The Tencent Cloud KMS actions (API 2019-01-18): each reads its parameters,
calls the key service, and shapes the response fields. Field names, limits
and codes follow spec/tencent-kms-api.md, section 4.
"""
import base64
import uuid
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kms.api.tencent.access import (Context, TargetReader, blob_key, keyless, many_keys, new_key,
                                    one_key, reencryption, renamed_key)
from kms.api.tencent.errors import TencentError
from kms.api.tencent.params import Params
from kms.service.keys import (ARCHIVED, DISABLED, ENABLED, ORIGIN_EXTERNAL, ORIGIN_KMS,
                              PENDING_DELETE, PENDING_IMPORT, USAGE_SYMMETRIC, owner_account)

# ListKeyDetail's KeyState filter numbers.
STATE_FILTER = {1: ENABLED, 2: DISABLED, 3: PENDING_DELETE, 4: PENDING_IMPORT, 5: ARCHIVED}
LISTED_BY_LIST_KEYS = (ENABLED, DISABLED, PENDING_IMPORT)
DATA_KEY_SPECS = {"AES_128": 16, "AES_256": 32}

# handler(ctx, params, target): target is what the action's reader returned
# and the policy check passed; the handler acts on it and on nothing else.
Handler = Callable[[Context, Params, Any], Dict[str, Any]]


class Action(NamedTuple):
    targets: TargetReader
    handler: Handler


ACTIONS: Dict[str, Action] = {}


def action(targets: TargetReader) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        ACTIONS[func.__name__] = Action(targets, func)
        return func
    return register


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_metadata(record: Dict[str, Any], uin: int) -> Dict[str, Any]:
    return {
        "KeyId": record["id"], "Alias": record["alias"], "CreateTime": record["created"],
        "Description": record["description"], "KeyState": record["state"],
        "KeyUsage": record["usage"], "Type": 2, "CreatorUin": uin,
        "KeyRotationEnabled": record["rotation_enabled"], "Owner": record["owner"],
        "NextRotateTime": record["next_rotate"], "DeletionDate": record["deletion_date"],
        "Origin": record["origin"], "ValidTo": record["valid_to"],
        "ResourceId": f"creatorUin/{uin}/{record['id']}", "RotateDays": record["rotate_days"],
        "LastRotateTime": record["last_rotate"],
    }


def _tags(p: Params) -> Dict[str, str]:
    tags: Dict[str, str] = {}
    for tag in p.dict_list("Tags"):
        key, value = tag.get("TagKey"), tag.get("TagValue")
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise TencentError("InvalidParameter", "each tag needs a TagKey and a TagValue string")
        if key in tags:
            raise TencentError("InvalidParameterValue.TagKeysDuplicated", f"tag key {key!r} is given twice")
        tags[key] = value
    return tags


def _wrap_to_public_key(p: Params, plaintext: bytes) -> Optional[str]:
    """EncryptionPublicKey/EncryptionAlgorithm: return the secret encrypted
    to the caller's RSA key instead of in clear."""
    pem = p.str("EncryptionPublicKey")
    if pem is None:
        return None
    algorithm = p.str("EncryptionAlgorithm", default="SM2")
    paddings = {
        "RSAES_PKCS1_V1_5": padding.PKCS1v15(),
        "RSAES_OAEP_SHA_1": padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None),
        "RSAES_OAEP_SHA_256": padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
    }
    if algorithm not in paddings:
        raise TencentError("InvalidParameterValue",
                           f"EncryptionAlgorithm {algorithm} is not supported; use one of {', '.join(paddings)}")
    try:
        public_key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise TencentError("InvalidParameterValue", "EncryptionPublicKey is not a PEM public key") from None
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < 2048:
        raise TencentError("InvalidParameterValue", "EncryptionPublicKey must be an RSA key of at least 2048 bits")
    try:
        return _b64(public_key.encrypt(plaintext, paddings[algorithm]))
    except ValueError:
        raise TencentError("FailedOperation.EncryptionError", "the data cannot be encrypted to that key") from None


# ---- keys ------------------------------------------------------------------


@action(new_key)
def CreateKey(ctx: Context, p: Params, alias: str) -> Dict[str, Any]:
    if alias.startswith("kms-"):
        raise TencentError("InvalidParameterValue.InvalidAlias", "aliases starting with kms- are reserved")
    key_type = p.int("Type", default=1)
    if key_type not in (1, 2):
        raise TencentError("InvalidParameterValue.InvalidType", "Type must be 1 (KMS-generated) or 2 (EXTERNAL)")
    usage = p.str("KeyUsage", default=USAGE_SYMMETRIC)
    if usage != USAGE_SYMMETRIC:
        raise TencentError("InvalidParameterValue.InvalidKeyUsage", f"KeyUsage {usage} is not offered")
    record = ctx.keys.create_key(alias, p.str("Description", default=""), usage,
                                 external=key_type == 2, tags=_tags(p),
                                 creator=ctx.caller["secret_id"])
    return {"KeyId": record["id"], "Alias": record["alias"], "CreateTime": record["created"],
            "Description": record["description"], "KeyState": record["state"],
            "KeyUsage": record["usage"], "TagCode": 0, "TagMsg": ""}


@action(one_key)
def DescribeKey(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    record = ctx.keys.describe(key_id)
    return {"KeyMetadata": key_metadata(record, ctx.caller["uin"])}


@action(many_keys)
def DescribeKeys(ctx: Context, p: Params, key_ids: List[str]) -> Dict[str, Any]:
    records = ctx.keys.describe_many(key_ids)
    return {"KeyMetadatas": [key_metadata(r, ctx.caller["uin"]) for r in records]}


def _page(p: Params) -> slice:
    offset = p.int("Offset", default=0, low=0, high=2**31)
    limit = p.int("Limit", default=10, low=1, high=200)
    return slice(offset, offset + limit)


def _by_role(p: Params, records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    role = p.int("Role", default=0, low=0, high=1)
    return [r for r in records if (owner_account(r) is None) == (role == 0)]


@action(keyless)
def ListKeys(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    page = _page(p)
    matching = [r for r in _by_role(p, ctx.keys.all_keys()) if r["state"] in LISTED_BY_LIST_KEYS]
    return {"Keys": [{"KeyId": r["id"]} for r in matching[page]], "TotalCount": len(matching)}


@action(keyless)
def ListKeyDetail(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    page = _page(p)
    records = _by_role(p, ctx.keys.all_keys())
    if p.int("OrderType", default=0, low=0, high=1) == 0:
        records.reverse()  # newest first
    state = p.int("KeyState", default=0, low=0, high=5)
    if state:
        records = [r for r in records if r["state"] == STATE_FILTER[state]]
    search = p.str("SearchKeyAlias")
    if search:
        records = [r for r in records if search in r["alias"] or search in r["id"]]
    origin = p.str("Origin", default="ALL")
    if origin not in ("ALL", ORIGIN_KMS, ORIGIN_EXTERNAL):
        raise TencentError("InvalidParameter", "Origin must be TENCENT_KMS, EXTERNAL or ALL")
    if origin != "ALL":
        records = [r for r in records if r["origin"] == origin]
    usage = p.str("KeyUsage", default=USAGE_SYMMETRIC)
    if usage != "ALL":
        records = [r for r in records if r["usage"] == usage]
    for tag_filter in p.dict_list("TagFilters"):
        key, values = tag_filter.get("TagKey"), tag_filter.get("TagValue")
        if not isinstance(key, str) or (values is not None and not isinstance(values, list)):
            raise TencentError("InvalidParameter", "TagFilters items need a TagKey and a TagValue list")
        records = [r for r in records if key in r["tags"] and (not values or r["tags"][key] in values)]
    return {"TotalCount": len(records),
            "KeyMetadatas": [key_metadata(r, ctx.caller["uin"]) for r in records[page]]}


@action(renamed_key)
def UpdateAlias(ctx: Context, p: Params, target: Any) -> Dict[str, Any]:
    key_id, alias = target
    if alias.startswith("kms-"):
        raise TencentError("InvalidParameterValue.InvalidAlias", "aliases starting with kms- are reserved")
    ctx.keys.update_alias(key_id, alias)
    return {}


@action(one_key)
def UpdateKeyDescription(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    description = p.str("Description", required=True)
    ctx.keys.update_description(key_id, description)
    return {}


@action(one_key)
def EnableKey(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.keys.enable(key_id)
    return {}


@action(one_key)
def DisableKey(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.keys.disable(key_id)
    return {}


@action(many_keys)
def EnableKeys(ctx: Context, p: Params, key_ids: List[str]) -> Dict[str, Any]:
    ctx.keys.set_state_many(key_ids, enable=True)
    return {}


@action(many_keys)
def DisableKeys(ctx: Context, p: Params, key_ids: List[str]) -> Dict[str, Any]:
    ctx.keys.set_state_many(key_ids, enable=False)
    return {}


@action(one_key)
def ScheduleKeyDeletion(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    days = p.int("PendingWindowInDays", required=True, low=7, high=30,
                 code="InvalidParameter.InvalidPendingWindowInDays")
    return {"DeletionDate": ctx.keys.schedule_deletion(key_id, days), "KeyId": key_id}


@action(one_key)
def CancelKeyDeletion(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.keys.cancel_deletion(key_id)
    return {"KeyId": key_id}


@action(one_key)
def ArchiveKey(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.keys.archive(key_id)
    return {}


@action(one_key)
def CancelKeyArchive(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.keys.cancel_archive(key_id)
    return {}


# ---- rotation --------------------------------------------------------------


@action(one_key)
def EnableKeyRotation(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    days = p.int("RotateDays", default=365, low=7, high=365, code="InvalidParameterValue")
    ctx.keys.enable_rotation(key_id, days)
    return {}


@action(one_key)
def DisableKeyRotation(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.keys.disable_rotation(key_id)
    return {}


@action(one_key)
def GetKeyRotationStatus(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    record = ctx.keys.describe(key_id)
    return {"KeyRotationEnabled": record["rotation_enabled"]}


@action(one_key)
def RotateKey(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.keys.rotate(key_id)
    return {"TaskId": str(uuid.uuid4())}


# ---- cryptography ----------------------------------------------------------


def _usable_key(ctx: Context, key_id: str) -> str:
    """KeyId, or service/NAME for a service account's own managed key,
    created on first use."""
    return ctx.keys.resolve_service_key(key_id, ctx.caller)


@action(one_key)
def Encrypt(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    key_id = _usable_key(ctx, key_id)
    plaintext = p.base64("Plaintext", code="InvalidParameterValue.InvalidPlaintext")
    blob = ctx.keys.encrypt(key_id, plaintext, p.str("EncryptionContext"))
    return {"CiphertextBlob": blob, "KeyId": key_id}


@action(blob_key)
def Decrypt(ctx: Context, p: Params, text: str) -> Dict[str, Any]:
    key_id, plaintext = ctx.keys.decrypt(text, p.str("EncryptionContext"))
    wrapped = _wrap_to_public_key(p, plaintext)
    return {"KeyId": key_id, "Plaintext": wrapped if wrapped is not None else _b64(plaintext)}


@action(reencryption)
def ReEncrypt(ctx: Context, p: Params, target: Any) -> Dict[str, Any]:
    text, destination = target
    blob, key_id, source, changed = ctx.keys.reencrypt(
        text, destination,
        p.str("SourceEncryptionContext"), p.str("DestinationEncryptionContext"))
    return {"CiphertextBlob": blob, "KeyId": key_id, "SourceKeyId": source, "ReEncrypted": changed}


@action(one_key)
def GenerateDataKey(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    key_id = _usable_key(ctx, key_id)
    if p.int("IsHostedByKms", default=0, low=0, high=1):
        raise TencentError("UnsupportedOperation", "data keys hosted by KMS are not offered")
    size = p.int("NumberOfBytes", low=1, high=1024)
    if size is None:
        spec = p.str("KeySpec")
        if spec is None:
            raise TencentError("InvalidParameter", "give KeySpec (AES_128 or AES_256) or NumberOfBytes")
        if spec not in DATA_KEY_SPECS:
            raise TencentError("InvalidParameter", "KeySpec must be AES_128 or AES_256")
        size = DATA_KEY_SPECS[spec]
    data_key, blob = ctx.keys.generate_data_key(key_id, size, p.str("EncryptionContext"))
    wrapped = _wrap_to_public_key(p, data_key)
    return {"KeyId": key_id, "Plaintext": wrapped if wrapped is not None else _b64(data_key),
            "CiphertextBlob": blob}


@action(keyless)
def GenerateRandom(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    size = p.int("NumberOfBytes", required=True, low=1, high=1024)
    return {"Plaintext": _b64(ctx.keys.generate_random(size))}


# ---- bring your own key -----------------------------------------------------


@action(one_key)
def GetParametersForImport(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    issued = ctx.imports.parameters(key_id, p.str("WrappingAlgorithm", required=True),
                                    p.str("WrappingKeySpec", required=True))
    return {"KeyId": key_id, "ImportToken": issued["token"],
            "PublicKey": _b64(issued["public_key_der"]), "ParametersValidTo": issued["valid_to"]}


@action(one_key)
def ImportKeyMaterial(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    encrypted = p.base64("EncryptedKeyMaterial", code="InvalidParameter.DecryptMaterialError")
    ctx.imports.import_material(key_id, p.str("ImportToken", required=True), encrypted,
                                p.int("ValidTo", default=0, low=0))
    return {}


@action(one_key)
def DeleteImportedKeyMaterial(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.imports.delete_material(key_id)
    return {}


# ---- service ---------------------------------------------------------------


@action(keyless)
def GetServiceStatus(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    return {"ServiceEnabled": True, "InvalidType": 1, "UserLevel": 1, "ProExpireTime": 0,
            "ProRenewFlag": 0, "ProResourceId": "", "ExclusiveVSMEnabled": False,
            "ExclusiveHSMEnabled": False, "SubscriptionInfo": "", "CmkUserCount": len(ctx.keys.all_keys()),
            "CmkLimit": 1_000_000, "ExclusiveHSMList": []}


@action(keyless)
def ListAlgorithms(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    return {"SymmetricAlgorithms": [{"KeyUsage": USAGE_SYMMETRIC, "Algorithm": "AES_256"}],
            "AsymmetricAlgorithms": [], "AsymmetricSignVerifyAlgorithms": []}
