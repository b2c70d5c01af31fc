"""The Tencent Cloud KMS Action API through the official SDK, against a real
server process: the key lifecycle, cryptography, and the error codes."""
import base64
import json
import time

import pytest
from conftest import b64
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.kms.v20190118 import models

from kms.api.tencent.action_kinds import changes_state

DAY = 86400


_signed_this_second = {}  # client -> {body: (the second it was signed in, actions)}


def call(client, action, **params):
    """One SDK call, made as a careful client makes them: the SDK signs a
    body identically within one second and does not sign the action, and
    the server takes a signature under a state-changing action only once,
    and reuses one only under its first action or a metadata read (README,
    replays), so a body sent this second is sent again only under the same
    read-only action."""
    request = getattr(models, action + "Request")()
    request.from_json_string(json.dumps(params))
    body = json.dumps(params, sort_keys=True)  # what the SDK sends, up to key order
    sent = _signed_this_second.setdefault(id(client), {})
    second, actions = sent.get(body, (None, set()))
    if second == int(time.time()) and (changes_state(action) or action not in actions):
        time.sleep(1.02 - time.time() % 1)
    now = int(time.time())
    sent = _signed_this_second[id(client)] = {b: v for b, v in sent.items() if v[0] == now}
    sent.setdefault(body, (now, set()))[1].add(action)
    return getattr(client, action)(request)


def error_of(client, action, **params):
    with pytest.raises(TencentCloudSDKException) as err:
        call(client, action, **params)
    assert err.value.requestId, "every error carries a RequestId"
    return err.value.code



_counter = iter(range(10**6))


def new_key(client, **params) -> str:
    params.setdefault("Alias", f"test-key-{next(_counter)}")
    return call(client, "CreateKey", **params).KeyId


# ---- lifecycle -------------------------------------------------------------


def test_create_and_describe(kms):
    created = call(kms, "CreateKey", Alias="orders-db", Description="orders table key",
                   Tags=[{"TagKey": "env", "TagValue": "prod"}])
    assert created.KeyState == "Enabled" and created.KeyUsage == "ENCRYPT_DECRYPT"
    meta = call(kms, "DescribeKey", KeyId=created.KeyId).KeyMetadata
    assert (meta.Alias, meta.Description, meta.Origin, meta.Owner) == (
        "orders-db", "orders table key", "TENCENT_KMS", "user")
    assert meta.KeyRotationEnabled is False and meta.CreateTime > 0
    many = call(kms, "DescribeKeys", KeyIds=[created.KeyId]).KeyMetadatas
    assert [m.KeyId for m in many] == [created.KeyId]


@pytest.mark.parametrize("alias, code", [
    ("", "InvalidParameterValue.InvalidAlias"),
    ("-starts-with-dash", "InvalidParameterValue.InvalidAlias"),
    ("has space", "InvalidParameterValue.InvalidAlias"),
    ("x" * 61, "InvalidParameterValue.InvalidAlias"),
    ("kms-reserved", "InvalidParameterValue.InvalidAlias"),
])
def test_bad_aliases(kms, alias, code):
    assert error_of(kms, "CreateKey", Alias=alias) == code


def test_alias_must_be_unique(kms):
    key = new_key(kms, Alias="unique-alias")
    assert error_of(kms, "CreateKey", Alias="unique-alias") == "InvalidParameterValue.AliasAlreadyExists"
    other = new_key(kms)
    assert error_of(kms, "UpdateAlias", KeyId=other, Alias="unique-alias") == "InvalidParameterValue.AliasAlreadyExists"
    call(kms, "UpdateAlias", KeyId=key, Alias="renamed-alias")
    new_key(kms, Alias="unique-alias")  # the old alias is free again


def test_update_description(kms):
    key = new_key(kms)
    call(kms, "UpdateKeyDescription", KeyId=key, Description="new words")
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.Description == "new words"
    assert error_of(kms, "UpdateKeyDescription", KeyId=key, Description="x" * 1025) == "InvalidParameter"


def test_unknown_and_malformed_key_ids(kms):
    assert error_of(kms, "DescribeKey", KeyId="not-a-key") == "InvalidParameterValue.InvalidKeyId"
    assert error_of(kms, "DescribeKey", KeyId="00000000-0000-4000-8000-000000000000") == "ResourceUnavailable.CmkNotFound"
    assert error_of(kms, "DescribeKey") == "MissingParameter"
    key = new_key(kms)
    assert error_of(kms, "DescribeKeys", KeyIds=[key, key]) == "InvalidParameterValue.DuplicatedKeyId"


def test_disable_and_enable(kms):
    key = new_key(kms)
    blob = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"secret")).CiphertextBlob
    call(kms, "DisableKey", KeyId=key)
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Disabled"
    assert error_of(kms, "Encrypt", KeyId=key, Plaintext=b64(b"x")) == "ResourceUnavailable.CmkDisabled"
    assert error_of(kms, "Decrypt", CiphertextBlob=blob) == "ResourceUnavailable.CmkDisabled"
    assert error_of(kms, "GenerateDataKey", KeyId=key, KeySpec="AES_256") == "ResourceUnavailable.CmkDisabled"
    call(kms, "EnableKey", KeyId=key)
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext) == b"secret"


def test_enable_and_disable_many(kms):
    keys = [new_key(kms) for _ in range(3)]
    call(kms, "DisableKeys", KeyIds=keys)
    assert {m.KeyState for m in call(kms, "DescribeKeys", KeyIds=keys).KeyMetadatas} == {"Disabled"}
    call(kms, "EnableKeys", KeyIds=keys)
    assert {m.KeyState for m in call(kms, "DescribeKeys", KeyIds=keys).KeyMetadatas} == {"Enabled"}
    assert error_of(kms, "DisableKeys", KeyIds=[keys[0], keys[0]]) == "InvalidParameterValue.DuplicatedKeyId"
    # One unknown key: nothing changes.
    missing = "00000000-0000-4000-8000-000000000001"
    assert error_of(kms, "DisableKeys", KeyIds=[keys[0], missing]) == "ResourceUnavailable.CmkNotFound"
    assert call(kms, "DescribeKey", KeyId=keys[0]).KeyMetadata.KeyState == "Enabled"


def test_archive(kms):
    key = new_key(kms)
    blob = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"old")).CiphertextBlob
    call(kms, "ArchiveKey", KeyId=key)
    assert error_of(kms, "Encrypt", KeyId=key, Plaintext=b64(b"x")) == "ResourceUnavailable.CmkArchived"
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext) == b"old"
    assert error_of(kms, "DisableKey", KeyId=key) == "ResourceUnavailable.CmkStateNotSupport"
    call(kms, "CancelKeyArchive", KeyId=key)
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Enabled"
    assert error_of(kms, "CancelKeyArchive", KeyId=key) == "ResourceUnavailable.CmkStateNotSupport"


def test_list_keys_and_details(kms):
    keys = [new_key(kms, Alias=f"listing-{i}", Tags=[{"TagKey": "team", "TagValue": f"t{i % 2}"}])
            for i in range(5)]
    listed = call(kms, "ListKeys", Limit=200)
    assert set(keys) <= {k.KeyId for k in listed.Keys} and listed.TotalCount >= 5
    page = call(kms, "ListKeys", Offset=1, Limit=2)
    assert len(page.Keys) == 2 and page.TotalCount == listed.TotalCount
    detail = call(kms, "ListKeyDetail", SearchKeyAlias="listing-", Limit=200)
    assert detail.TotalCount == 5
    assert [m.KeyId for m in detail.KeyMetadatas] == keys[::-1]  # newest first
    oldest = call(kms, "ListKeyDetail", SearchKeyAlias="listing-", OrderType=1, Limit=200)
    assert [m.KeyId for m in oldest.KeyMetadatas] == keys
    tagged = call(kms, "ListKeyDetail", SearchKeyAlias="listing-",
                  TagFilters=[{"TagKey": "team", "TagValue": ["t1"]}])
    assert {m.KeyId for m in tagged.KeyMetadatas} == {keys[1], keys[3]}
    call(kms, "DisableKey", KeyId=keys[0])
    disabled = call(kms, "ListKeyDetail", SearchKeyAlias="listing-", KeyState=2)
    assert [m.KeyId for m in disabled.KeyMetadatas] == [keys[0]]
    assert error_of(kms, "ListKeys", Limit=201) == "InvalidParameter"


def test_duplicate_tags_are_refused(kms):
    tags = [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "a", "TagValue": "2"}]
    assert error_of(kms, "CreateKey", Alias="dup-tags", Tags=tags) == "InvalidParameterValue.TagKeysDuplicated"


# ---- cryptography ----------------------------------------------------------


def test_encrypt_and_decrypt_with_context(kms):
    key = new_key(kms)
    out = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"card 4111"), EncryptionContext='{"a":"1","b":"2"}')
    assert out.KeyId == key
    again = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"card 4111"), EncryptionContext='{"a":"1","b":"2"}')
    assert again.CiphertextBlob != out.CiphertextBlob  # fresh nonce each time
    # The same context with keys in another order is the same context.
    plain = call(kms, "Decrypt", CiphertextBlob=out.CiphertextBlob, EncryptionContext='{"b": "2", "a": "1"}')
    assert base64.b64decode(plain.Plaintext) == b"card 4111" and plain.KeyId == key
    for wrong in (None, '{"a":"1"}', '{"a":"1","b":"3"}'):
        params = {"CiphertextBlob": out.CiphertextBlob}
        if wrong:
            params["EncryptionContext"] = wrong
        assert error_of(kms, "Decrypt", **params) == "InvalidParameterValue.InvalidCiphertext"
    assert error_of(kms, "Encrypt", KeyId=key, Plaintext=b64(b"x"), EncryptionContext="[1,2]") == "InvalidParameterValue"


def test_damaged_ciphertexts_are_invalid_not_internal(kms):
    key = new_key(kms)
    blob = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"data")).CiphertextBlob
    raw = bytearray(base64.b64decode(blob))
    for position in (0, 5, 18, 25, len(raw) - 1):
        damaged = bytearray(raw)
        damaged[position] ^= 0x01
        code = error_of(kms, "Decrypt", CiphertextBlob=b64(bytes(damaged)))
        assert code in ("InvalidParameterValue.InvalidCiphertext", "ResourceUnavailable.CmkNotFound")
    for garbage in ("not base64!!", "", b64(b"short"), b64(bytes(100))):
        code = error_of(kms, "Decrypt", CiphertextBlob=garbage)
        assert code in ("InvalidParameterValue.InvalidCiphertext", "MissingParameter", "ResourceUnavailable.CmkNotFound")


def test_plaintext_limits(kms):
    key = new_key(kms)
    call(kms, "Encrypt", KeyId=key, Plaintext=b64(bytes(4096)))
    assert error_of(kms, "Encrypt", KeyId=key, Plaintext=b64(bytes(4097))) == "InvalidParameterValue.InvalidPlaintext"
    assert error_of(kms, "Encrypt", KeyId=key, Plaintext="@@not base64@@") == "InvalidParameterValue.InvalidPlaintext"
    assert error_of(kms, "Encrypt", KeyId=key) == "MissingParameter"
    assert error_of(kms, "Encrypt", KeyId=key, Plaintext=123) == "InvalidParameter"


def test_generate_data_key(kms):
    key = new_key(kms)
    for spec, size in (("AES_128", 16), ("AES_256", 32)):
        out = call(kms, "GenerateDataKey", KeyId=key, KeySpec=spec, EncryptionContext='{"f":"x"}')
        dek = base64.b64decode(out.Plaintext)
        assert len(dek) == size
        back = call(kms, "Decrypt", CiphertextBlob=out.CiphertextBlob, EncryptionContext='{"f":"x"}')
        assert base64.b64decode(back.Plaintext) == dek
    assert len(base64.b64decode(call(kms, "GenerateDataKey", KeyId=key, NumberOfBytes=1024).Plaintext)) == 1024
    assert error_of(kms, "GenerateDataKey", KeyId=key, NumberOfBytes=1025) == "InvalidParameter"
    assert error_of(kms, "GenerateDataKey", KeyId=key) == "InvalidParameter"
    assert error_of(kms, "GenerateDataKey", KeyId=key, KeySpec="AES_512") == "InvalidParameter"


@pytest.mark.parametrize("algorithm, pad", [
    ("RSAES_OAEP_SHA_256", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)),
    ("RSAES_OAEP_SHA_1", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)),
    ("RSAES_PKCS1_V1_5", padding.PKCS1v15()),
])
def test_data_key_encrypted_to_the_callers_public_key(kms, algorithm, pad):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    key = new_key(kms)
    out = call(kms, "GenerateDataKey", KeyId=key, KeySpec="AES_256", EncryptionPublicKey=pem,
               EncryptionAlgorithm=algorithm)
    dek = private.decrypt(base64.b64decode(out.Plaintext), pad)
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=out.CiphertextBlob).Plaintext) == dek
    wrapped = call(kms, "Decrypt", CiphertextBlob=out.CiphertextBlob, EncryptionPublicKey=pem,
                   EncryptionAlgorithm=algorithm)
    assert private.decrypt(base64.b64decode(wrapped.Plaintext), pad) == dek
    assert error_of(kms, "GenerateDataKey", KeyId=key, KeySpec="AES_256", EncryptionPublicKey="nope",
                    EncryptionAlgorithm=algorithm) == "InvalidParameterValue"


def test_reencrypt(kms):
    source, destination = new_key(kms), new_key(kms)
    blob = call(kms, "Encrypt", KeyId=source, Plaintext=b64(b"move me"), EncryptionContext='{"v":"1"}').CiphertextBlob
    out = call(kms, "ReEncrypt", CiphertextBlob=blob, DestinationKeyId=destination,
               SourceEncryptionContext='{"v":"1"}', DestinationEncryptionContext='{"v":"2"}')
    assert (out.KeyId, out.SourceKeyId, out.ReEncrypted) == (destination, source, True)
    plain = call(kms, "Decrypt", CiphertextBlob=out.CiphertextBlob, EncryptionContext='{"v":"2"}')
    assert base64.b64decode(plain.Plaintext) == b"move me" and plain.KeyId == destination
    same = call(kms, "ReEncrypt", CiphertextBlob=blob, SourceEncryptionContext='{"v":"1"}',
                DestinationEncryptionContext='{"v":"1"}')
    assert same.ReEncrypted is False and same.CiphertextBlob == blob


def test_generate_random(kms):
    a = base64.b64decode(call(kms, "GenerateRandom", NumberOfBytes=32).Plaintext)
    b = base64.b64decode(call(kms, "GenerateRandom", NumberOfBytes=32).Plaintext)
    assert len(a) == 32 and a != b
    for bad in (0, 1025, "many"):
        assert error_of(kms, "GenerateRandom", NumberOfBytes=bad) == "InvalidParameter"


# ---- rotation and deletion (clock fast-forwarded) ----------------------------


def test_rotation_keeps_old_versions_decrypting(kms, server):
    key = new_key(kms)
    old = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"v1 data")).CiphertextBlob
    assert error_of(kms, "RotateKey", KeyId=key) == "UnsupportedOperation.RotateNotSupported"
    assert error_of(kms, "EnableKeyRotation", KeyId=key, RotateDays=6) == "InvalidParameterValue"
    assert error_of(kms, "EnableKeyRotation", KeyId=key, RotateDays=366) == "InvalidParameterValue"
    call(kms, "EnableKeyRotation", KeyId=key, RotateDays=30)
    assert call(kms, "GetKeyRotationStatus", KeyId=key).KeyRotationEnabled is True
    call(kms, "RotateKey", KeyId=key)
    assert error_of(kms, "RotateKey", KeyId=key) == "RequestLimitExceeded.RotateRateLimited"
    new = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"v2 data")).CiphertextBlob
    assert base64.b64decode(old)[17:21] != base64.b64decode(new)[17:21]  # key version field
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=old).Plaintext) == b"v1 data"
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=new).Plaintext) == b"v2 data"
    # Automatic rotation falls due after RotateDays: the scheduler performs it.
    before = call(kms, "DescribeKey", KeyId=key).KeyMetadata
    server.shift_clock(31 * DAY)
    after = call(kms, "DescribeKey", KeyId=key).KeyMetadata
    assert after.LastRotateTime > before.LastRotateTime and after.NextRotateTime > before.NextRotateTime
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=old).Plaintext) == b"v1 data"
    call(kms, "DisableKeyRotation", KeyId=key)
    assert call(kms, "GetKeyRotationStatus", KeyId=key).KeyRotationEnabled is False
    server.shift_clock(0)


def test_scheduled_deletion_destroys_the_key(kms, server):
    key = new_key(kms)
    blob = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"doomed")).CiphertextBlob
    assert error_of(kms, "ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7) == "ResourceUnavailable.CmkShouldBeDisabled"
    call(kms, "DisableKey", KeyId=key)
    for days in (6, 31):
        assert error_of(kms, "ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=days) == "InvalidParameter.InvalidPendingWindowInDays"
    assert error_of(kms, "CancelKeyDeletion", KeyId=key) == "ResourceUnavailable.CmkNotPendingDelete"
    out = call(kms, "ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
    meta = call(kms, "DescribeKey", KeyId=key).KeyMetadata
    assert meta.KeyState == "PendingDelete" and meta.DeletionDate == out.DeletionDate
    assert error_of(kms, "Encrypt", KeyId=key, Plaintext=b64(b"x")) == "ResourceUnavailable.CmkStateNotSupport"
    assert error_of(kms, "GenerateDataKey", KeyId=key, KeySpec="AES_128") == "ResourceUnavailable.KeyPendingDelete"
    assert error_of(kms, "UpdateAlias", KeyId=key, Alias="nope-new") == "ResourceUnavailable.CmkStateNotSupport"
    assert key not in {k.KeyId for k in call(kms, "ListKeys", Limit=200).Keys}
    call(kms, "CancelKeyDeletion", KeyId=key)
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Disabled"
    call(kms, "ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
    server.shift_clock(6 * DAY)
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "PendingDelete"
    server.shift_clock(7 * DAY + 60)
    assert error_of(kms, "DescribeKey", KeyId=key) == "ResourceUnavailable.CmkNotFound"
    assert error_of(kms, "Decrypt", CiphertextBlob=blob) == "ResourceUnavailable.CmkNotFound"
    # The wrapped material is gone from the store file, not just hidden.
    with open(f"{server.data_dir}/store.log", "rb") as f:
        assert key.encode() not in f.read()
    server.shift_clock(0)


# ---- the service -----------------------------------------------------------


def test_service_status_and_algorithms(kms):
    assert call(kms, "GetServiceStatus").ServiceEnabled is True
    algorithms = call(kms, "ListAlgorithms").SymmetricAlgorithms
    assert [(a.KeyUsage, a.Algorithm) for a in algorithms] == [("ENCRYPT_DECRYPT", "AES_256")]


def test_every_call_is_audited_without_secrets(kms, server):
    key = new_key(kms, Alias="audited-key")
    secret = b"audit must never see this"
    blob = call(kms, "Encrypt", KeyId=key, Plaintext=b64(secret)).CiphertextBlob
    error_of(kms, "Decrypt", CiphertextBlob=blob, EncryptionContext='{"wrong":"1"}')
    with open(f"{server.data_dir}/audit.log") as f:
        text = f.read()
    entries = [json.loads(line) for line in text.splitlines()]
    mine = [e for e in entries if e["key_id"] == key]
    assert [(e["action"], e["result"]) for e in mine] == [
        ("CreateKey", "Success"), ("Encrypt", "Success"),
        ("Decrypt", "InvalidParameterValue.InvalidCiphertext")]
    assert all(e["account"] and e["request_id"] and e["latency_ms"] >= 0 for e in mine)
    assert b64(secret) not in text and blob not in text and secret.decode() not in text
    from kms.cli import main
    assert main(["audit", "verify", "--data-dir", server.data_dir]) == 0


def test_state_table_refusals(kms, server):
    """More of spec table 3.2: operations a state does not allow."""
    pending = new_key(kms)
    call(kms, "DisableKey", KeyId=pending)
    call(kms, "ScheduleKeyDeletion", KeyId=pending, PendingWindowInDays=30)
    for action in ("EnableKey", "DisableKey", "ArchiveKey", "EnableKeyRotation"):
        assert error_of(kms, action, KeyId=pending) == "ResourceUnavailable.CmkStateNotSupport", action
    assert error_of(kms, "UpdateKeyDescription", KeyId=pending, Description="x") == \
        "ResourceUnavailable.CmkStateNotSupport"
    assert error_of(kms, "ScheduleKeyDeletion", KeyId=pending, PendingWindowInDays=7) == \
        "ResourceUnavailable.CmkStateNotSupport"
    disabled = new_key(kms)
    call(kms, "DisableKey", KeyId=disabled)
    assert error_of(kms, "ArchiveKey", KeyId=disabled) == "ResourceUnavailable.CmkStateNotSupport"
    assert error_of(kms, "RotateKey", KeyId=disabled) == "ResourceUnavailable.CmkStateNotSupport"  # spec 3.2
    external = new_key(kms, Type=2)
    assert error_of(kms, "GenerateDataKey", KeyId=external, KeySpec="AES_256") == \
        "ResourceUnavailable.CmkStateNotSupport"
    # ReEncrypt to a disabled destination.
    source = new_key(kms)
    blob = call(kms, "Encrypt", KeyId=source, Plaintext=b64(b"x")).CiphertextBlob
    assert error_of(kms, "ReEncrypt", CiphertextBlob=blob, DestinationKeyId=disabled) == \
        "ResourceUnavailable.CmkDisabled"


@pytest.mark.parametrize("action, params", [
    ("DescribeKeys", {"KeyIds": [f"00000000-0000-4000-8000-{i:012d}" for i in range(101)]}),
    ("DescribeKeys", {"KeyIds": []}),
    ("ListKeyDetail", {"Origin": "SOMEWHERE"}),
    ("ListKeyDetail", {"KeyState": 6}),
    ("ListKeyDetail", {"OrderType": 2}),
    ("ListKeys", {"Role": 2}),
    ("ListKeys", {"Offset": -1}),
    ("GenerateDataKey", {"KeyId": "00000000-0000-4000-8000-000000000000", "IsHostedByKms": 1}),
])
def test_parameter_limits(kms, action, params):
    code = error_of(kms, action, **params)
    assert code in ("InvalidParameter", "UnsupportedOperation"), code
