"""The Tencent Cloud KMS actions (API 2019-01-18): each reads its parameters,
calls the key service, and shapes the response fields. Field names, limits
and codes follow spec/tencent-kms-api.md, section 4.
"""
import base64
import binascii
import os
import uuid
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kms.api.tencent.access import (Context, TargetReader, blob_key, keyless, many_keys, new_key,
                                    one_key, reencryption, renamed_key)
from kms.api.tencent.errors import TencentError
from kms.api.tencent.params import Params
from kms.keys import blob as blobs
from kms.keys import sm2
from kms.keys.asymmetric import RSA_PADDINGS
from kms.service.imports import MAX_VALID_TO, RSAES_NAMES
from kms.service.listing import KeyQuery, find_keys
from kms.service.keys import KeyService
from kms.service.keys import (ARCHIVED, DISABLED, ENABLED, MAX_DESCRIPTION_BYTES, ORIGIN_EXTERNAL,
                              ORIGIN_KMS, PENDING_DELETE, PENDING_IMPORT)
from kms.service.keytypes import USAGE_SYMMETRIC

# ListKeyDetail's KeyState filter numbers.
STATE_FILTER = {1: ENABLED, 2: DISABLED, 3: PENDING_DELETE, 4: PENDING_IMPORT, 5: ARCHIVED}
LISTED_BY_LIST_KEYS = (ENABLED, DISABLED, PENDING_IMPORT)
DATA_KEY_SPECS = {"AES_128": 16, "AES_256": 32}
# CreateKey's KeyUsage values (spec 2.3) this server makes, with each one's
# ListAlgorithms entry (the usage's suffix, as Tencent's examples show it);
# the SM2 usages exist in the API but are not offered yet.
CREATE_USAGES = {USAGE_SYMMETRIC: "AES_256", "ASYMMETRIC_DECRYPT_RSA_2048": "RSA_2048",
                 "ASYMMETRIC_SIGN_VERIFY_RSA_2048": "RSA_2048", "ASYMMETRIC_SIGN_VERIFY_ECC": "ECC",
                 "ASYMMETRIC_SIGN_VERIFY_ECDSA384": "ECDSA384"}
SM2_USAGES = {"ASYMMETRIC_DECRYPT_SM2": "SM2", "ASYMMETRIC_SIGN_VERIFY_SM2": "SM2"}
# SM2 is offered where libcrypto can do it (kms.keys.sm2), else refused as
# a usage this region does not offer.
NOT_OFFERED_USAGES: Tuple[str, ...] = ()
if sm2.available():
    CREATE_USAGES.update(SM2_USAGES)
else:  # pragma: no cover - depends on the machine's libcrypto
    NOT_OFFERED_USAGES = tuple(SM2_USAGES)
# Tags are stored with the key: bounded as Tencent Cloud's tag service bounds
# them (the KMS spec states no limit of its own).
MAX_TAGS = 50
MAX_TAG_KEY_CHARS = 127
MAX_TAG_VALUE_CHARS = 255
# Names of algorithms, specs, usages: longer than any, short enough to echo.
MAX_NAME_CHARS = 64
MAX_PAGE_OFFSET = 2**31
MAX_IMPORT_TOKEN_CHARS = 128  # issued tokens are 43
MAX_BINDING_CHARS = 1024  # read this far; the key service holds the real bounds
DEFAULT_REGION = "ap-guangzhou"
# Dedicated HSM clusters are not offered: any HsmClusterId names none (spec 4).
NO_HSM_CLUSTER = "InvalidParameterValue.InvalidHsmClusterId"
PADDINGS = {name: RSA_PADDINGS[padding_name]() for name, padding_name in RSAES_NAMES.items()}

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
        # Type: 2 FIPS 140-2, 4 the Chinese national (SM) standard (spec 2.1).
        "KeyUsage": record["usage"], "Type": 4 if record.get("material_kind") in ("sm4", "sm2") else 2,
        "CreatorUin": uin,
        "KeyRotationEnabled": record["rotation_enabled"], "Owner": record["owner"],
        "NextRotateTime": record["next_rotate"], "DeletionDate": record["deletion_date"],
        "Origin": record["origin"], "ValidTo": record["valid_to"],
        "ResourceId": f"creatorUin/{uin}/{record['id']}", "RotateDays": record["rotate_days"],
        "LastRotateTime": record["last_rotate"],
    }


def _choice(p: Params, name: str, choices: Sequence[str], default: Optional[str] = None,
            code: str = "InvalidParameter", required: bool = False) -> Optional[str]:
    """A string that must be one of choices (the value is not echoed)."""
    value = p.str(name, required=required, default=default, max_chars=MAX_NAME_CHARS, code=code)
    if value is not None and value not in choices:
        raise TencentError(code, f"{name} must be one of {', '.join(choices)}")
    return value


def _context(p: Params, name: str) -> Optional[str]:
    """An EncryptionContext: a string holding a JSON object, at most 1024
    characters, checked here, before any key is touched."""
    text = p.str(name, max_chars=blobs.MAX_CONTEXT_CHARS, code="InvalidParameterValue")
    try:
        blobs.canonical_context(text)
    except UnicodeEncodeError:  # "\ud800" inside the JSON: no UTF-8 for it
        raise TencentError("InvalidParameterValue", f"{name} holds text that is not valid Unicode") from None
    return text


def _tags(p: Params) -> Dict[str, str]:
    tags: Dict[str, str] = {}
    for tag in p.objects("Tags", max_items=MAX_TAGS):
        key = tag.str("TagKey", required=True, max_chars=MAX_TAG_KEY_CHARS)
        value = tag.str("TagValue", required=True, max_chars=MAX_TAG_VALUE_CHARS)
        if not key:
            raise TencentError("InvalidParameter", f"{tag.prefix}TagKey must not be empty")
        if key in tags:
            raise TencentError("InvalidParameterValue.TagKeysDuplicated", f"tag key {key!r} is given twice")
        tags[key] = value
    return tags


def _tag_filters(p: Params) -> List[Tuple[str, List[str]]]:
    """[(TagKey, [TagValue, ...]), ...]; no values matches any value."""
    return [(f.str("TagKey", required=True, max_chars=MAX_TAG_KEY_CHARS),
             f.str_list("TagValue", max_chars=MAX_TAG_VALUE_CHARS))
            for f in p.objects("TagFilters", max_items=MAX_TAGS)]


Seal = Callable[[bytes], str]


SM2_ALGORITHMS = ("SM2", "SM2_C1C3C2_ASN1")  # raw C1C3C2 (the SDK's default), GM/T 0009 ASN.1
MAX_PEM_CHARS = 4096


def _pem_der(pem: str) -> bytes:
    """The DER inside one PEM PUBLIC KEY block."""
    lines = [line.strip() for line in pem.strip().splitlines()]
    if len(lines) < 3 or lines[0] != "-----BEGIN PUBLIC KEY-----" or lines[-1] != "-----END PUBLIC KEY-----":
        raise TencentError("InvalidParameterValue", "EncryptionPublicKey is not a PEM public key")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise TencentError("InvalidParameterValue", "EncryptionPublicKey is not a PEM public key") from None


def _public_key_seal(p: Params) -> Optional[Seal]:
    """EncryptionPublicKey/EncryptionAlgorithm: how to return the secret
    encrypted to the caller's RSA or SM2 key instead of in clear (None: in
    clear). Read and checked before the secret exists."""
    pem = p.str("EncryptionPublicKey", max_chars=MAX_PEM_CHARS, code="InvalidParameterValue")
    if pem is None:
        return None
    algorithm = str(_choice(p, "EncryptionAlgorithm", tuple(PADDINGS) + SM2_ALGORITHMS, default="SM2",
                            code="InvalidParameterValue"))
    der = _pem_der(pem)
    if algorithm in SM2_ALGORITHMS:
        try:
            sm2_key = sm2.public_key_from_der(der)
        except sm2.SM2Error:
            raise TencentError("InvalidParameterValue",
                               f"EncryptionAlgorithm {algorithm} needs an SM2 EncryptionPublicKey") from None

        def seal_sm2(secret: bytes) -> str:
            asn1 = sm2_key.encrypt(secret)
            return _b64(asn1 if algorithm == "SM2_C1C3C2_ASN1" else sm2.raw_from_asn1(asn1))
        return seal_sm2
    try:
        public_key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise TencentError("InvalidParameterValue", f"EncryptionAlgorithm {algorithm} needs an RSA "
                           "EncryptionPublicKey") from None
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < 2048:
        raise TencentError("InvalidParameterValue", "EncryptionPublicKey must be an RSA key of at least 2048 bits")

    def seal(secret: bytes) -> str:
        try:
            return _b64(public_key.encrypt(secret, PADDINGS[algorithm]))
        except ValueError:
            raise TencentError("FailedOperation.EncryptionError", "the data cannot be encrypted to that key") from None
    return seal


def _plaintext_field(secret: bytes, seal: Optional[Seal]) -> str:
    return seal(secret) if seal is not None else _b64(secret)


def _no_hsm_cluster(p: Params) -> None:
    if p.str("HsmClusterId", max_chars=MAX_NAME_CHARS, code=NO_HSM_CLUSTER):
        raise TencentError(NO_HSM_CLUSTER, "this server has no dedicated HSM clusters; leave HsmClusterId empty")


# ---- keys ------------------------------------------------------------------


@action(new_key)
def CreateKey(ctx: Context, p: Params, alias: str) -> Dict[str, Any]:
    if alias.startswith("kms-"):
        raise TencentError("InvalidParameterValue.InvalidAlias", "aliases starting with kms- are reserved")
    _no_hsm_cluster(p)
    # 1 KMS-generated, 2 EXTERNAL
    key_type = p.int("Type", 1, 2, default=1, code="InvalidParameterValue.InvalidType")
    usage = p.str("KeyUsage", default=USAGE_SYMMETRIC, max_chars=MAX_NAME_CHARS,
                  code="InvalidParameterValue.InvalidKeyUsage")
    if usage in NOT_OFFERED_USAGES:
        raise TencentError("UnsupportedOperation.UnsupportedKeyUsageInCurrentRegion",
                           f"KeyUsage {usage} is not offered by this server")
    if usage not in CREATE_USAGES:
        raise TencentError("InvalidParameterValue.InvalidKeyUsage",
                           f"KeyUsage must be one of {', '.join(CREATE_USAGES)}")
    description = _description(p, required=False)
    record = ctx.keys.create_key(alias, description, str(usage), external=key_type == 2,
                                 tags=_tags(p), creator=ctx.caller["secret_id"])
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


def _description(p: Params, required: bool) -> str:
    # Stored: at most 1024 bytes (the key service counts the bytes).
    return p.str("Description", required=required, default="", max_chars=MAX_DESCRIPTION_BYTES) or ""


def _page(p: Params) -> slice:
    offset = p.int("Offset", 0, MAX_PAGE_OFFSET, default=0)
    limit = p.int("Limit", 1, 200, default=10)
    return slice(offset, offset + limit)


def _role(p: Params) -> bool:
    """Role: 0 the customer's keys, 1 the service-managed ones."""
    return p.int("Role", 0, 1, default=0) == 1


@action(keyless)
def ListKeys(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    page = _page(p)
    listed = find_keys(ctx.keys.all_keys(), KeyQuery(service_managed=_role(p), descending=False))
    matching = [r for r in listed if r["state"] in LISTED_BY_LIST_KEYS]
    return {"Keys": [{"KeyId": r["id"]} for r in matching[page]], "TotalCount": len(matching)}


@action(keyless)
def ListKeyDetail(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    page = _page(p)
    newest_first = p.int("OrderType", 0, 1, default=0) == 0
    state = p.int("KeyState", 0, len(STATE_FILTER), default=0)
    search = p.str("SearchKeyAlias")
    origin = _choice(p, "Origin", ("ALL", ORIGIN_KMS, ORIGIN_EXTERNAL), default="ALL")
    usage = p.str("KeyUsage", default=USAGE_SYMMETRIC, max_chars=MAX_NAME_CHARS)
    query = KeyQuery(service_managed=_role(p),
                     state=STATE_FILTER[state] if state else None, search=search or None,
                     origin=None if origin == "ALL" else origin,
                     usage=None if usage == "ALL" else usage, tags=_tag_filters(p),
                     descending=newest_first)
    records = find_keys(ctx.keys.all_keys(), query)
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
    ctx.keys.update_description(key_id, _description(p, required=True))
    return {}


@action(one_key)
def ScheduleKeyDeletion(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    days = p.int("PendingWindowInDays", 7, 30, required=True,
                 code="InvalidParameter.InvalidPendingWindowInDays")
    return {"DeletionDate": ctx.keys.schedule_deletion(key_id, days), "KeyId": key_id}


def _changes_key(change: Callable[[KeyService, str], Any], answer_key_id: bool = False) -> Handler:
    """An action whose whole work is one change the key service makes (the
    state rules are the service's); it answers nothing, or the key's id."""
    def handler(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
        change(ctx.keys, key_id)
        return {"KeyId": key_id} if answer_key_id else {}
    return handler


def _changes_keys(enable: bool) -> Handler:
    def handler(ctx: Context, p: Params, key_ids: List[str]) -> Dict[str, Any]:
        ctx.keys.set_state_many(key_ids, enable=enable)
        return {}
    return handler


for _name, _change, _with_id in (
        ("EnableKey", KeyService.enable, False), ("DisableKey", KeyService.disable, False),
        ("CancelKeyDeletion", KeyService.cancel_deletion, True), ("ArchiveKey", KeyService.archive, False),
        ("CancelKeyArchive", KeyService.cancel_archive, False),
        ("DisableKeyRotation", KeyService.disable_rotation, False)):
    ACTIONS[_name] = Action(one_key, _changes_key(_change, _with_id))
ACTIONS["EnableKeys"] = Action(many_keys, _changes_keys(True))
ACTIONS["DisableKeys"] = Action(many_keys, _changes_keys(False))


# ---- rotation --------------------------------------------------------------


def rotate_days(p: Params) -> int:
    """RotateDays of EnableKeyRotation (the console reads it with this too,
    before it creates a key that is to rotate)."""
    return p.int("RotateDays", 7, 365, default=365, code="InvalidParameterValue")


@action(one_key)
def EnableKeyRotation(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.keys.enable_rotation(key_id, rotate_days(p))
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


# Each handler reads all its parameters before it acts: a service key is
# created on first use only by a call that is otherwise sound.


@action(one_key)
def Encrypt(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    plaintext = p.base64("Plaintext", code="InvalidParameterValue.InvalidPlaintext")
    context = _context(p, "EncryptionContext")
    key_id = _usable_key(ctx, key_id)
    blob = ctx.blobs.encrypt(key_id, plaintext, context)
    return {"CiphertextBlob": blob, "KeyId": key_id}


@action(blob_key)
def Decrypt(ctx: Context, p: Params, text: str) -> Dict[str, Any]:
    context, seal = _context(p, "EncryptionContext"), _public_key_seal(p)
    key_id, plaintext = ctx.blobs.decrypt(text, context)
    return {"KeyId": key_id, "Plaintext": _plaintext_field(plaintext, seal)}


@action(reencryption)
def ReEncrypt(ctx: Context, p: Params, target: Any) -> Dict[str, Any]:
    text, destination = target
    source_context = _context(p, "SourceEncryptionContext")
    destination_context = _context(p, "DestinationEncryptionContext")
    blob, key_id, source, changed = ctx.blobs.reencrypt(text, destination, source_context,
                                                       destination_context)
    return {"CiphertextBlob": blob, "KeyId": key_id, "SourceKeyId": source, "ReEncrypted": changed}


def _data_key_size(p: Params) -> int:
    """NumberOfBytes, else KeySpec's size; NumberOfBytes wins if both."""
    size = p.int("NumberOfBytes", 1, 1024)
    spec = _choice(p, "KeySpec", tuple(DATA_KEY_SPECS))
    if size is not None:
        return size
    if spec is None:
        raise TencentError("InvalidParameter", "give KeySpec (AES_128 or AES_256) or NumberOfBytes")
    return DATA_KEY_SPECS[spec]


@action(one_key)
def GenerateDataKey(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    if p.int("IsHostedByKms", 0, 1, default=0):
        raise TencentError("UnsupportedOperation", "data keys hosted by KMS are not offered")
    _no_hsm_cluster(p)
    size, context, seal = _data_key_size(p), _context(p, "EncryptionContext"), _public_key_seal(p)
    key_id = _usable_key(ctx, key_id)
    data_key, blob = ctx.blobs.generate_data_key(key_id, size, context)
    return {"KeyId": key_id, "Plaintext": _plaintext_field(data_key, seal), "CiphertextBlob": blob}


@action(keyless)
def GenerateRandom(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    size = p.int("NumberOfBytes", 1, 1024, required=True)
    return {"Plaintext": _b64(ctx.keys.generate_random(size))}


# ---- bring your own key -----------------------------------------------------


@action(one_key)
def GetParametersForImport(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    issued = ctx.imports.parameters(key_id,
                                    p.str("WrappingAlgorithm", required=True, max_chars=MAX_NAME_CHARS),
                                    p.str("WrappingKeySpec", required=True, max_chars=MAX_NAME_CHARS))
    return {"KeyId": key_id, "ImportToken": issued["token"],
            "PublicKey": _b64(issued["public_key_der"]), "ParametersValidTo": issued["valid_to"]}


@action(one_key)
def ImportKeyMaterial(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    encrypted = p.base64("EncryptedKeyMaterial", code="InvalidParameter.DecryptMaterialError")
    token = p.str("ImportToken", required=True, max_chars=MAX_IMPORT_TOKEN_CHARS)
    # 0: never expires; the service checks that a time is after now.
    valid_to = p.int("ValidTo", 0, MAX_VALID_TO, default=0)
    ctx.imports.import_material(key_id, token, encrypted, valid_to)
    return {}


@action(one_key)
def DeleteImportedKeyMaterial(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.imports.delete_material(key_id)
    return {}


# ---- service ---------------------------------------------------------------


@action(keyless)
def GetServiceStatus(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    # One edition, always on; the key quota is the one CreateKey enforces.
    return {"ServiceEnabled": True, "InvalidType": 1, "UserLevel": 1, "ProExpireTime": 0,
            "ProRenewFlag": 0, "ProResourceId": "", "ExclusiveVSMEnabled": False,
            "ExclusiveHSMEnabled": False, "SubscriptionInfo": "", "CmkUserCount": ctx.keys.key_count(),
            "CmkLimit": ctx.keys.key_limit, "ExclusiveHSMList": [], "IsAllowedDataKeyHosted": False,
            "IsAllowedSync": False, "SyncTaskList": []}


@action(keyless)
def GetRegions(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    return {"Regions": [region()]}


def region() -> str:
    """KMS_REGION (kms server --region): the one region this server is."""
    return os.environ.get("KMS_REGION") or DEFAULT_REGION


# ---- cloud resources ---------------------------------------------------------


def _binding(p: Params) -> Tuple[str, str]:
    return (p.str("ProductId", required=True, max_chars=MAX_BINDING_CHARS),
            p.str("ResourceId", required=True, max_chars=MAX_BINDING_CHARS))


@action(one_key)
def BindCloudResource(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.keys.bind(key_id, *_binding(p))
    return {}


@action(one_key)
def UnbindCloudResource(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ctx.keys.unbind(key_id, *_binding(p))
    return {}


@action(keyless)
def ListAlgorithms(ctx: Context, p: Params, _: None) -> Dict[str, Any]:
    def listed(prefix: str) -> List[Dict[str, str]]:
        return [{"KeyUsage": usage, "Algorithm": name} for usage, name in CREATE_USAGES.items()
                if usage.startswith(prefix)]
    symmetric = [{"KeyUsage": USAGE_SYMMETRIC, "Algorithm": "SM4" if ctx.keys.symmetric == "sm4" else "AES_256"}]
    return {"SymmetricAlgorithms": symmetric,
            "AsymmetricAlgorithms": listed("ASYMMETRIC_DECRYPT_"),
            "AsymmetricSignVerifyAlgorithms": listed("ASYMMETRIC_SIGN_VERIFY_")}


# ---- asymmetric keys ---------------------------------------------------------

# The Tencent names of the schemes kms.service.asymmetric offers.
SIGNING_ALGORITHMS = {"RSA_PSS_SHA_256": "rsa-pss-sha256", "RSA_PKCS1_SHA_256": "rsa-pkcs1-sha256",
                      "ECC_P256_R1": "ecdsa-sha256",
                      # The P-384 name is not published (spec 2.3); this one follows ECC_P256_R1.
                      "ECC_P384_R1": "ecdsa-sha384", "SM2DSA": "sm2dsa"}
MAX_SIGNATURE_BYTES = 1024
MAX_RSA_CIPHERTEXT_BYTES = 1024


def _message(p: Params) -> Tuple[bytes, bool]:
    """Message and whether it is a DIGEST (the service checks the sizes)."""
    is_digest = _choice(p, "MessageType", ("RAW", "DIGEST"), default="RAW") == "DIGEST"
    return p.base64("Message", code="InvalidParameter"), is_digest


def _signing_algorithm(p: Params) -> str:
    return SIGNING_ALGORITHMS[str(_choice(p, "Algorithm", tuple(SIGNING_ALGORITHMS), required=True))]


def _bounded(data: bytes, name: str, most: int) -> bytes:
    if len(data) > most:
        raise TencentError("InvalidParameter", f"{name} is over {most} bytes")
    return data


@action(one_key)
def GetPublicKey(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    der, pem = ctx.services.asymmetric.public_key(key_id)
    return {"KeyId": key_id, "PublicKey": _b64(der), "PublicKeyPem": pem}


@action(one_key)
def SignByAsymmetricKey(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    algorithm = _signing_algorithm(p)
    message, is_digest = _message(p)
    return {"Signature": _b64(ctx.services.asymmetric.sign(key_id, algorithm, message, is_digest))}


@action(one_key)
def VerifyByAsymmetricKey(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    algorithm = _signing_algorithm(p)
    message, is_digest = _message(p)
    signature = _bounded(p.base64("SignatureValue", code="InvalidParameterValue"), "SignatureValue",
                         MAX_SIGNATURE_BYTES)
    valid = ctx.services.asymmetric.verify(key_id, algorithm, message, is_digest, signature)
    return {"SignatureValid": valid}


@action(one_key)
def AsymmetricRsaDecrypt(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    ciphertext = _bounded(p.base64("Ciphertext", code="InvalidParameter"), "Ciphertext",
                          MAX_RSA_CIPHERTEXT_BYTES)
    algorithm = RSAES_NAMES[str(_choice(p, "Algorithm", tuple(RSAES_NAMES),
                                          required=True))]
    plaintext = ctx.services.asymmetric.decrypt(key_id, algorithm, ciphertext)
    return {"KeyId": key_id, "Plaintext": _b64(plaintext)}


@action(one_key)
def AsymmetricSm2Decrypt(ctx: Context, p: Params, key_id: str) -> Dict[str, Any]:
    # Bounded loosely here (the service holds the 256-byte rule) so the text is not decoded unbounded.
    ciphertext = _bounded(p.base64("Ciphertext", code="InvalidParameter"), "Ciphertext", MAX_RSA_CIPHERTEXT_BYTES)
    plaintext = ctx.services.asymmetric.decrypt_sm2(key_id, ciphertext)
    return {"KeyId": key_id, "Plaintext": _b64(plaintext)}
