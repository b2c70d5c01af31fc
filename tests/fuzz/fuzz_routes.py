"""What the fuzzer knows of every API: each route's path, methods and
parameters, with the kind of value each parameter takes.

This is the harness's description of the wire APIs (transit, the auth/token
routes, bulk, Tencent, health). test_fuzz_routes.py fails when the app
registers a route, or a handler reads a parameter, that is not described
here: a new route or parameter must be added to this file, so the fuzzer
generates requests for it.

Kinds (the strategies for each are in fuzz_values.py):
    str, b64, plaintext (b64 of a secret: must never reach a log), bool,
    int (low/high), duration, enum (choices), key_name, ciphertext (transit
    "vault:vN:..."), signature, hmac, backup, context (Tencent
    EncryptionContext JSON text), key_id, key_ids, blob (Tencent
    CiphertextBlob), pem, tags, tag_filters, bin, bin_or_list, int_list,
    bin_or_str_list, version (export path: a number or "latest").
A parameter with `items` is a list of objects with those parameters
(transit batch_input).
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class P:
    name: str
    kind: str
    low: Optional[int] = None
    high: Optional[int] = None
    choices: Tuple[str, ...] = ()
    items: Tuple["P", ...] = ()
    # Read on every call of the route (so a value no strict reader accepts
    # must fail the call); False where the handler may rightly ignore it.
    always_read: bool = True


@dataclass(frozen=True)
class Route:
    api: str  # transit, sys, bulk, health
    path: str  # exactly as registered, with {placeholders}
    methods: Tuple[str, ...]  # the methods the route serves (others: 405)
    params: Tuple[P, ...] = ()  # body parameters
    path_params: Tuple[P, ...] = ()
    query: Tuple[P, ...] = ()
    reads: Tuple[str, ...] = field(default=())  # other body names the handler may read


HASHES = ("sha1", "sha2-224", "sha2-256", "sha2-384", "sha2-512",
          "sha3-224", "sha3-256", "sha3-384", "sha3-512")
KEY_TYPES = ("aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "xchacha20-poly1305", "ed25519",
             "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "hmac", "aes256-gcm", "sm2")
W = ("POST", "PUT")
NAME = P("name", "key_name")

# ---- transit ------------------------------------------------------------------

_ENCRYPT_ITEM = (P("plaintext", "plaintext"), P("context", "b64"), P("key_version", "int", 0, 1 << 31),
                 P("associated_data", "b64"), P("reference", "str"), P("nonce", "b64"))
_DECRYPT_ITEM = (P("ciphertext", "ciphertext"), P("context", "b64"), P("associated_data", "b64"),
                 P("reference", "str"), P("nonce", "b64"))
_REWRAP_ITEM = (P("ciphertext", "ciphertext"), P("context", "b64"), P("key_version", "int", 0, 1 << 31),
                P("reference", "str"), P("nonce", "b64"), P("associated_data", "b64"))
_PARTIAL = P("partial_failure_response_code", "int", 1, 599, always_read=False)  # read on failures only
_SIGN_ITEM = (P("input", "b64"), P("context", "b64"), P("reference", "str"),
              P("key_version", "int", 0, 1 << 31), P("prehashed", "bool"))
_SIGN_OPTIONS = (P("hash_algorithm", "enum", choices=HASHES + ("none",)),
                 P("algorithm", "enum", choices=HASHES),
                 P("prehashed", "bool"), P("key_version", "int", 0, 1 << 31),
                 P("signature_algorithm", "enum", choices=("pss", "pkcs1v15")),
                 P("marshaling_algorithm", "enum", choices=("asn1", "jws")),
                 P("salt_length", "enum", choices=("auto", "hash", "32", "-1", "x")))
# Verification takes the version from the signature: no key_version.
_VERIFY_ITEM = tuple(p for p in _SIGN_ITEM if p.name != "key_version") + (P("signature", "signature"),
                                                                          P("hmac", "hmac"))
_VERIFY_OPTIONS = tuple(p for p in _SIGN_OPTIONS if p.name != "key_version")
_HMAC_ITEM = (P("input", "b64"), P("reference", "str"), P("key_version", "int", 0, 1 << 31))

_CREATE = (P("type", "enum", choices=KEY_TYPES), P("derived", "bool"),
           P("convergent_encryption", "bool"), P("exportable", "bool"),
           P("allow_plaintext_backup", "bool"), P("auto_rotate_period", "duration"),
           P("key_size", "int", 0, 512))
_CONFIG = (P("min_decryption_version", "int", 0, 1 << 31), P("min_encryption_version", "int", 0, 1 << 31),
           P("deletion_allowed", "bool"), P("exportable", "bool"), P("allow_plaintext_backup", "bool"),
           P("auto_rotate_period", "duration"))
_EXPORT_KINDS = ("encryption-key", "signing-key", "hmac-key", "public-key")

TRANSIT = (
    Route("sys", "/v1/auth/token/lookup-self", ("GET", "POST")),
    Route("sys", "/v1/auth/token/revoke-self", W),
    Route("sys", "/v1/auth/token/create", W, (P("ttl", "duration"), P("policies", "str"), P("num_uses", "int", 0, 9))),
    Route("sys", "/v1/auth/token/renew-self", W),
    Route("sys", "/v1/auth/token/lookup", W + ("GET",), (P("token", "str"),)),
    Route("sys", "/v1/sys/health", ("GET",), query=(P("activecode", "int", 100, 599),)),
    Route("sys", "/v1/sys/seal-status", ("GET",)),
    Route("sys", "/v1/sys/init", ("GET",) + W),
    Route("sys", "/v1/sys/leader", ("GET",)),
    Route("sys", "/v1/sys/mounts", ("GET",)),
    Route("sys", "/v1/sys/mounts/{mount}", W + ("GET", "DELETE"), (P("type", "str"),),
          (P("mount", "enum", choices=("transit", "other", "sys")),)),
    Route("sys", "/v1/sys/mounts/{mount}/tune", W + ("GET",), (),
          (P("mount", "enum", choices=("transit", "other")),)),
    Route("sys", "/v1/sys/internal/ui/mounts", ("GET",)),
    Route("sys", "/v1/sys/capabilities-self", W, (P("paths", "str"), P("path", "str"))),
    Route("transit", "/v1/transit/keys", ("LIST", "GET"),
          query=(P("list", "enum", choices=("true", "false")), P("after", "str"), P("limit", "int", 0, 1000))),
    Route("transit", "/v1/transit/keys/", ("LIST", "GET"),
          query=(P("list", "enum", choices=("true", "false")), P("after", "str"), P("limit", "int", 0, 1000))),
    Route("transit", "/v1/transit/keys/{name}", W + ("GET", "DELETE"), _CREATE, (NAME,)),
    Route("transit", "/v1/transit/keys/{name}/config", W, _CONFIG, (NAME,)),
    Route("transit", "/v1/transit/keys/{name}/rotate", W, (), (NAME,)),
    Route("transit", "/v1/transit/datakey/{kind}/{name}", W,
          (P("bits", "int", 128, 512), P("context", "b64"), P("associated_data", "b64"),
           P("key_version", "int", 0, 1 << 31), P("nonce", "b64"),
           P("batch_input", "batch", items=(P("context", "b64"),))),
          (P("kind", "enum", choices=("plaintext", "wrapped")), NAME)),
    Route("transit", "/v1/transit/wrapping_key", ("GET",)),
    Route("transit", "/v1/transit/keys/{name}/soft-delete", ("DELETE",), (), (NAME,)),
    Route("transit", "/v1/transit/keys/{name}/soft-delete-restore", W, (), (NAME,)),
    Route("transit", "/v1/transit/keys/{name}/import", W,
          (P("ciphertext", "b64"), P("hash_function", "enum", choices=("SHA256", "SHA1", "SHA512", "MD5")),
           P("type", "enum", choices=KEY_TYPES), P("derived", "bool"), P("convergent_encryption", "bool"),
           P("exportable", "bool"), P("allow_plaintext_backup", "bool"), P("auto_rotate_period", "duration"),
           P("allow_rotation", "bool"), P("public_key", "pem")), (NAME,)),
    Route("transit", "/v1/transit/keys/{name}/import_version", W,
          (P("ciphertext", "b64"), P("hash_function", "enum", choices=("SHA256", "SHA384")),
           P("version", "int", 0, 9), P("public_key", "pem")), (NAME,)),
    Route("transit", "/v1/transit/keys/{name}/trim", W, (P("min_available_version", "int", 0, 1 << 31),), (NAME,)),
    Route("transit", "/v1/transit/hash", W,
          (P("input", "b64"), P("algorithm", "enum", choices=HASHES), P("format", "enum", choices=("hex", "base64")))),
    Route("transit", "/v1/transit/hash/{algorithm}", W,
          (P("input", "b64"), P("algorithm", "enum", choices=HASHES), P("format", "enum", choices=("hex", "base64"))),
          (P("algorithm", "enum", choices=HASHES),)),
    Route("transit", "/v1/transit/hmac/{name}", W,
          _HMAC_ITEM + (P("algorithm", "enum", choices=HASHES), P("hash_algorithm", "enum", choices=HASHES),
                        P("batch_input", "batch", items=_HMAC_ITEM)), (NAME,)),
    Route("transit", "/v1/transit/hmac/{name}/{algorithm}", W,
          _HMAC_ITEM + (P("algorithm", "enum", choices=HASHES), P("hash_algorithm", "enum", choices=HASHES),
                        P("batch_input", "batch", items=_HMAC_ITEM)),
          (NAME, P("algorithm", "enum", choices=HASHES))),
    Route("transit", "/v1/transit/sign/{name}", W,
          _SIGN_ITEM + _SIGN_OPTIONS + (P("batch_input", "batch", items=_SIGN_ITEM),), (NAME,)),
    Route("transit", "/v1/transit/sign/{name}/{algorithm}", W,
          _SIGN_ITEM + _SIGN_OPTIONS + (P("batch_input", "batch", items=_SIGN_ITEM),),
          (NAME, P("algorithm", "enum", choices=HASHES))),
    Route("transit", "/v1/transit/verify/{name}", W,
          _VERIFY_ITEM + _VERIFY_OPTIONS + (P("batch_input", "batch", items=_VERIFY_ITEM),), (NAME,)),
    Route("transit", "/v1/transit/verify/{name}/{algorithm}", W,
          _VERIFY_ITEM + _VERIFY_OPTIONS + (P("batch_input", "batch", items=_VERIFY_ITEM),),
          (NAME, P("algorithm", "enum", choices=HASHES))),
    Route("transit", "/v1/transit/export/{kind}/{name}", ("GET",), (),
          (P("kind", "enum", choices=_EXPORT_KINDS), NAME)),
    Route("transit", "/v1/transit/export/{kind}/{name}/{version}", ("GET",), (),
          (P("kind", "enum", choices=_EXPORT_KINDS), NAME, P("version", "version"))),
    Route("transit", "/v1/transit/backup/{name}", ("GET",), (), (NAME,)),
    Route("transit", "/v1/transit/restore", W,
          (P("backup", "backup"), P("name", "key_name"), P("force", "bool"))),
    Route("transit", "/v1/transit/restore/{name}", W,
          (P("backup", "backup"), P("name", "key_name"), P("force", "bool")), (NAME,)),
    Route("transit", "/v1/transit/random", W,
          (P("bytes", "int", 1, 131072), P("format", "enum", choices=("base64", "hex")),
           P("source", "enum", choices=("platform", "all")))),
    Route("transit", "/v1/transit/random/{bytes}", W,
          (P("bytes", "int", 1, 131072, always_read=False), P("format", "enum", choices=("base64", "hex")),
           P("source", "enum", choices=("platform", "all"))),
          (P("bytes", "int", 1, 131072),)),
    Route("transit", "/v1/transit/random/{source}/{bytes}", W,
          (P("bytes", "int", 1, 131072, always_read=False), P("format", "enum", choices=("base64", "hex"))),
          (P("source", "enum", choices=("platform", "all", "seal")), P("bytes", "int", 1, 131072))),
    # The hot routes (served by the lane ahead of Starlette for POST/PUT).
    Route("transit", "/v1/transit/encrypt/{name}", W,
          _ENCRYPT_ITEM + (P("batch_input", "batch", items=_ENCRYPT_ITEM), _PARTIAL,
                           # read only when the key is created (upsert)
                           P("type", "enum", choices=KEY_TYPES, always_read=False),
                           P("convergent_encryption", "bool", always_read=False)),
          (NAME,)),
    Route("transit", "/v1/transit/decrypt/{name}", W,
          _DECRYPT_ITEM + (P("batch_input", "batch", items=_DECRYPT_ITEM), _PARTIAL), (NAME,)),
    Route("transit", "/v1/transit/rewrap/{name}", W,
          _REWRAP_ITEM + (P("batch_input", "batch", items=_REWRAP_ITEM), _PARTIAL), (NAME,)),
)

# ---- bulk (msgpack) -----------------------------------------------------------------

BULK = (
    Route("bulk", "/v1/bulk/encrypt/{name}", W,
          (P("items", "bin_list"), P("associated_data", "bin_or_list"), P("key_version", "int", 0, 1 << 31)),
          (NAME,)),
    Route("bulk", "/v1/bulk/decrypt/{name}", W,
          (P("items", "bin_or_str_list"), P("associated_data", "bin_or_list"),
           P("key_version", "int", 0, 1 << 31), P("key_versions", "int_list")),
          (NAME,)),
)

OTHER = (
    Route("health", "/health", ("GET",)),
    Route("tencent", "/", ("POST",)),  # the actions are in TENCENT
)

ROUTES: Tuple[Route, ...] = TRANSIT + BULK + OTHER
# The routes a test clock adds (kms server --test-clock); never fuzzed.
TEST_ONLY_PATHS = frozenset({"/_test/clock"})
# The web console's HTML forms: fuzzed by test_fuzz_console, not by the JSON harness.
CONSOLE_PATHS = frozenset({"/console"})
CATCH_ALL = "/{path:anypath}"  # every path no route serves: transit's audited 404

# ---- Tencent actions ----------------------------------------------------------------

KEY_ID = P("KeyId", "key_id")
_PAGE = (P("Offset", "int", 0, 2 ** 31), P("Limit", "int", 1, 200), P("Role", "int", 0, 1))
_WRAP_TO = (P("EncryptionPublicKey", "pem"),
            P("EncryptionAlgorithm", "enum", choices=("RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1",
                                                      "RSAES_OAEP_SHA_256", "SM2")))

_SIGNING = (KEY_ID, P("Message", "b64"), P("MessageType", "enum", choices=("RAW", "DIGEST")),
            P("Algorithm", "enum", choices=("RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256", "ECC_P256_R1",
                                            "ECC_P384_R1", "SM2DSA")))

TENCENT: Dict[str, Tuple[P, ...]] = {
    "CreateKey": (P("Alias", "str"), P("Description", "str"), P("KeyUsage", "enum", choices=(
        "ENCRYPT_DECRYPT", "ASYMMETRIC_DECRYPT_RSA_2048", "ASYMMETRIC_SIGN_VERIFY_RSA_2048",
        "ASYMMETRIC_SIGN_VERIFY_ECC", "ASYMMETRIC_SIGN_VERIFY_ECDSA384", "ASYMMETRIC_SIGN_VERIFY_SM2",
        "ASYMMETRIC_DECRYPT_SM2")),
        P("Type", "int", 1, 2), P("Tags", "tags"), P("HsmClusterId", "str")),
    "DescribeKey": (KEY_ID,),
    "DescribeKeys": (P("KeyIds", "key_ids"),),
    "ListKeys": _PAGE,
    "ListKeyDetail": _PAGE + (P("OrderType", "int", 0, 1), P("KeyState", "int", 0, 5),
                              P("SearchKeyAlias", "str"),
                              P("Origin", "enum", choices=("ALL", "TENCENT_KMS", "EXTERNAL")),
                              P("KeyUsage", "enum", choices=("ALL", "ENCRYPT_DECRYPT")),
                              P("TagFilters", "tag_filters")),
    "UpdateAlias": (KEY_ID, P("Alias", "str")),
    "UpdateKeyDescription": (KEY_ID, P("Description", "str")),
    "EnableKey": (KEY_ID,),
    "DisableKey": (KEY_ID,),
    "EnableKeys": (P("KeyIds", "key_ids"),),
    "DisableKeys": (P("KeyIds", "key_ids"),),
    "ScheduleKeyDeletion": (KEY_ID, P("PendingWindowInDays", "int", 7, 30)),
    "CancelKeyDeletion": (KEY_ID,),
    "ArchiveKey": (KEY_ID,),
    "CancelKeyArchive": (KEY_ID,),
    "EnableKeyRotation": (KEY_ID, P("RotateDays", "int", 7, 365)),
    "DisableKeyRotation": (KEY_ID,),
    "GetKeyRotationStatus": (KEY_ID,),
    "RotateKey": (KEY_ID,),
    "Encrypt": (KEY_ID, P("Plaintext", "plaintext"), P("EncryptionContext", "context")),
    "Decrypt": (P("CiphertextBlob", "blob"), P("EncryptionContext", "context")) + _WRAP_TO,
    "ReEncrypt": (P("CiphertextBlob", "blob"), P("DestinationKeyId", "key_id"),
                  P("SourceEncryptionContext", "context"), P("DestinationEncryptionContext", "context")),
    "GenerateDataKey": (KEY_ID, P("KeySpec", "enum", choices=("AES_128", "AES_256")),
                        P("NumberOfBytes", "int", 1, 1024), P("EncryptionContext", "context"),
                        P("IsHostedByKms", "int", 0, 1), P("DataKeyName", "str"),
                        P("Description", "str"), P("HsmClusterId", "str")) + _WRAP_TO,
    "GenerateRandom": (P("NumberOfBytes", "int", 1, 1024),),
    "GetParametersForImport": (KEY_ID, P("WrappingAlgorithm", "enum", choices=(
        "RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE")),
        P("WrappingKeySpec", "enum", choices=("RSA_2048", "SM2"))),
    "ImportKeyMaterial": (KEY_ID, P("EncryptedKeyMaterial", "b64"), P("ImportToken", "str"),
                          P("ValidTo", "int", 0, 2147443200)),
    "DeleteImportedKeyMaterial": (KEY_ID,),
    "GetServiceStatus": (),
    "ListAlgorithms": (),
    "GetPublicKey": (KEY_ID,),
    "GetRegions": (),
    "BindCloudResource": (KEY_ID, P("ProductId", "str"), P("ResourceId", "str")),
    "UnbindCloudResource": (KEY_ID, P("ProductId", "str"), P("ResourceId", "str")),
    "SignByAsymmetricKey": _SIGNING,
    "VerifyByAsymmetricKey": _SIGNING + (P("SignatureValue", "b64"),),
    "AsymmetricSm2Decrypt": (KEY_ID, P("Ciphertext", "b64")),
    "AsymmetricRsaDecrypt": (KEY_ID, P("Ciphertext", "b64"), P("Algorithm", "enum", choices=(
        "RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"))),
}
# Read for every action by the endpoint itself: the key the audit entry names.
TENCENT_COMMON_READS = frozenset({"KeyId", "CiphertextBlob"})
TENCENT_VERSION = "2019-01-18"


def described_paths() -> Dict[str, Route]:
    return {route.path: route for route in ROUTES}


def allowed_reads(route: Route) -> Dict[str, frozenset]:
    """{"" : top-level names, "batch_input[]": item names, ...}: every body
    name the route's handlers may read."""
    names = {p.name for p in route.params} | set(route.reads)
    allowed = {"": frozenset(names)}
    for p in route.params:
        if p.items:
            allowed[p.name + "[]"] = frozenset(i.name for i in p.items)
    return allowed


def tencent_reads(action: str) -> Dict[str, frozenset]:
    """The body names an action's handler (and the endpoint) may read."""
    params = TENCENT.get(action)
    if params is None:
        return {"": TENCENT_COMMON_READS}
    tags = frozenset({"TagKey", "TagValue"})
    return {"": frozenset(p.name for p in params) | TENCENT_COMMON_READS, "Tags[]": tags, "TagFilters[]": tags}


def _short_repr(self: Route) -> str:
    return f"Route({self.api} {'|'.join(self.methods)} {self.path})"


Route.__repr__ = _short_repr  # type: ignore[method-assign]
