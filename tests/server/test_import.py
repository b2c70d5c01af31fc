"""Bring your own key through the SDK: wrapping with the returned public key,
state changes, expiry, deletion and re-import of the same material."""
import base64
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from test_tencent_api import b64, call, error_of, new_key

DAY = 86400
PADDINGS = {
    "RSAES_OAEP_SHA_256": lambda: padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
    "RSAES_OAEP_SHA_1": lambda: padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None),
    "RSAES_PKCS1_V1_5": lambda: padding.PKCS1v15(),
}


def wrapped_for(kms, key, material, algorithm="RSAES_OAEP_SHA_256"):
    params = call(kms, "GetParametersForImport", KeyId=key, WrappingAlgorithm=algorithm,
                  WrappingKeySpec="RSA_2048")
    public = serialization.load_der_public_key(base64.b64decode(params.PublicKey))
    assert params.PublicKey.startswith("MIIBIjAN")  # DER SubjectPublicKeyInfo, RSA-2048
    return params.ImportToken, b64(public.encrypt(material, PADDINGS[algorithm]()))


def import_material(kms, key, material, algorithm="RSAES_OAEP_SHA_256", **extra):
    token, encrypted = wrapped_for(kms, key, material, algorithm)
    call(kms, "ImportKeyMaterial", KeyId=key, ImportToken=token, EncryptedKeyMaterial=encrypted, **extra)


@pytest.mark.parametrize("algorithm", sorted(PADDINGS))
def test_imported_material_is_the_key_in_use(kms, algorithm):
    key = new_key(kms, Type=2)
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "PendingImport"
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.Origin == "EXTERNAL"
    assert error_of(kms, "Encrypt", KeyId=key, Plaintext=b64(b"x")) == "ResourceUnavailable.CmkStateNotSupport"
    material = os.urandom(32)
    import_material(kms, key, material, algorithm)
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Enabled"
    blob = base64.b64decode(call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"byok")).CiphertextBlob)
    # The blob opens locally with the material we imported (format: README).
    assert OpenSSLAESGCM(material).decrypt(blob[21:33], blob[33:], blob[:21]) == b"byok"


def test_import_refusals(kms, server):
    native = new_key(kms)
    assert error_of(kms, "GetParametersForImport", KeyId=native, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                    WrappingKeySpec="RSA_2048") == "UnsupportedOperation.NotExternalCmk"
    key = new_key(kms, Type=2)
    assert error_of(kms, "GetParametersForImport", KeyId=key, WrappingAlgorithm="RSA_RAW",
                    WrappingKeySpec="RSA_2048") == "InvalidParameter"
    assert error_of(kms, "GetParametersForImport", KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                    WrappingKeySpec="RSA_4096") == "InvalidParameter"
    assert error_of(kms, "EnableKeyRotation", KeyId=key) == "UnsupportedOperation.ExternalCmkCanNotRotate"
    token, _ = wrapped_for(kms, key, os.urandom(32))
    assert error_of(kms, "ImportKeyMaterial", KeyId=key, ImportToken=token,
                    EncryptedKeyMaterial=b64(os.urandom(256))) == "InvalidParameter.DecryptMaterialError"
    token, short = wrapped_for(kms, key, os.urandom(16))
    assert error_of(kms, "ImportKeyMaterial", KeyId=key, ImportToken=token,
                    EncryptedKeyMaterial=short) == "InvalidParameter.DecryptMaterialError"
    material = os.urandom(32)
    token, encrypted = wrapped_for(kms, key, material)
    call(kms, "ImportKeyMaterial", KeyId=key, ImportToken=token, EncryptedKeyMaterial=encrypted)
    # A token is spent once, and the first material is the only material.
    assert error_of(kms, "ImportKeyMaterial", KeyId=key, ImportToken=token,
                    EncryptedKeyMaterial=encrypted) == "InvalidParameter"
    token, other = wrapped_for(kms, key, os.urandom(32))
    assert error_of(kms, "ImportKeyMaterial", KeyId=key, ImportToken=token,
                    EncryptedKeyMaterial=other) == "InvalidParameterValue.MaterialNotMatch"
    # Tokens last 24 hours.
    token, encrypted = wrapped_for(kms, key, material)
    server.shift_clock(DAY + 60)
    try:
        assert error_of(kms, "ImportKeyMaterial", KeyId=key, ImportToken=token,
                        EncryptedKeyMaterial=encrypted) == "ResourceUnavailable.TokenExpired"
    finally:
        server.shift_clock(0)


def test_expiry_deletion_and_reimport(kms, server):
    key = new_key(kms, Type=2)
    material = os.urandom(32)
    meta = call(kms, "DescribeKey", KeyId=key).KeyMetadata
    import_material(kms, key, material, ValidTo=meta.CreateTime + 3600)
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.ValidTo == meta.CreateTime + 3600
    blob = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"kept")).CiphertextBlob
    server.shift_clock(2 * 3600)
    try:
        assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "PendingImport"
        assert error_of(kms, "Decrypt", CiphertextBlob=blob) == "ResourceUnavailable.CmkStateNotSupport"
    finally:
        server.shift_clock(0)
    import_material(kms, key, material)  # the same material brings it back
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext) == b"kept"
    call(kms, "DeleteImportedKeyMaterial", KeyId=key)
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "PendingImport"
    assert error_of(kms, "Decrypt", CiphertextBlob=blob) == "ResourceUnavailable.CmkStateNotSupport"
    import_material(kms, key, material)
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext) == b"kept"
    assert error_of(kms, "DeleteImportedKeyMaterial", KeyId=new_key(kms)) == "UnsupportedOperation.NotExternalCmk"
    bad_valid_to = call(kms, "DescribeKey", KeyId=key).KeyMetadata.CreateTime - 10
    token, encrypted = wrapped_for(kms, key, material)
    assert error_of(kms, "ImportKeyMaterial", KeyId=key, ImportToken=token, EncryptedKeyMaterial=encrypted,
                    ValidTo=bad_valid_to) == "InvalidParameter"
