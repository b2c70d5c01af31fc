"""A server for an SM region (kms server --symmetric-algorithm SM4) through
the official Tencent SDK: symmetric CMKs are SM4, their CiphertextBlobs are
SM4-GCM under the same layout with format byte 2 (checked by opening one
locally with `cryptography`'s SM4), imports take 16-byte material wrapped
with RSA or SM2, and a blob's format cannot be swapped."""
import base64
import os

import pytest
from conftest import b64, sdk_client, server_fixture
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from test_tencent_api import call, error_of, new_key

server = server_fixture("sm-region", extra=["--symmetric-algorithm", "SM4"])


@pytest.fixture(scope="module")
def kms(server):
    return sdk_client(server.endpoint)


def open_locally(key: bytes, blob_text: str) -> bytes:
    raw = base64.b64decode(blob_text)
    header, nonce, body = raw[:21], raw[21:33], raw[33:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, body[-16:])).decryptor()
    decryptor.authenticate_additional_data(header)
    return decryptor.update(body[:-16]) + decryptor.finalize()


def test_symmetric_keys_are_sm4(kms):
    assert [(a.KeyUsage, a.Algorithm) for a in call(kms, "ListAlgorithms").SymmetricAlgorithms] == [
        ("ENCRYPT_DECRYPT", "SM4")]
    key_id = new_key(kms)
    assert call(kms, "DescribeKey", KeyId=key_id).KeyMetadata.Type == 4  # the SM standard
    blob = call(kms, "Encrypt", KeyId=key_id, Plaintext=b64(b"in an SM region")).CiphertextBlob
    assert base64.b64decode(blob)[0] == 2  # format 2: SM4-GCM
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext) == b"in an SM region"
    dek = call(kms, "GenerateDataKey", KeyId=key_id, KeySpec="AES_128", EncryptionContext='{"a":"b"}')
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=dek.CiphertextBlob,
                                 EncryptionContext='{"a":"b"}').Plaintext) == base64.b64decode(dek.Plaintext)
    moved = call(kms, "ReEncrypt", CiphertextBlob=blob, DestinationKeyId=new_key(kms))
    assert moved.ReEncrypted and base64.b64decode(call(kms, "Decrypt", CiphertextBlob=moved.CiphertextBlob)
                                                    .Plaintext) == b"in an SM region"
    # A blob's format byte is bound by the tag: claiming AES-GCM is a damaged blob.
    raw = bytearray(base64.b64decode(blob))
    raw[0] = 1
    assert error_of(kms, "Decrypt", CiphertextBlob=b64(bytes(raw))) == "InvalidParameterValue.InvalidCiphertext"


@pytest.mark.parametrize("wrapping", ["RSAES_OAEP_SHA_256", "SM2PKE"])
def test_imports_take_16_byte_material(kms, wrapping):
    from gmssl import sm2 as gmssl_sm2

    from kms.keys import sm2

    key_id = new_key(kms, Type=2)

    def wrapped(material):
        issued = call(kms, "GetParametersForImport", KeyId=key_id, WrappingAlgorithm=wrapping,
                      WrappingKeySpec="SM2" if wrapping == "SM2PKE" else "RSA_2048")
        der = base64.b64decode(issued.PublicKey)
        if wrapping == "SM2PKE":
            point = sm2.public_key_from_der(der).point
            encrypted = b"\x04" + gmssl_sm2.CryptSM2(private_key=None, public_key=point[1:].hex(), mode=1).encrypt(material)
        else:
            public = serialization.load_der_public_key(der)
            encrypted = public.encrypt(material, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
        return issued.ImportToken, b64(encrypted)

    token, encrypted = wrapped(os.urandom(32))
    assert error_of(kms, "ImportKeyMaterial", KeyId=key_id, ImportToken=token,
                    EncryptedKeyMaterial=encrypted) == "InvalidParameter.DecryptMaterialError"
    material = os.urandom(16)
    token, encrypted = wrapped(material)
    call(kms, "ImportKeyMaterial", KeyId=key_id, ImportToken=token, EncryptedKeyMaterial=encrypted)
    blob = call(kms, "Encrypt", KeyId=key_id, Plaintext=b64(b"imported SM4")).CiphertextBlob
    assert open_locally(material, blob) == b"imported SM4"


def test_sm4_keys_are_not_transit_keys(kms, server):
    """Transit has no SM4 type: an SM4 CMK is not served there, and transit
    still makes its own AES keys on an SM server."""
    import requests

    new_key(kms, Alias="sm4-not-in-transit")
    headers = {"X-Vault-Token": server.root_token}
    answer = requests.get(f"http://{server.endpoint}/v1/transit/keys/sm4-not-in-transit", headers=headers,
                          timeout=30)
    assert answer.status_code == 404
    made = requests.post(f"http://{server.endpoint}/v1/transit/keys/aes-on-sm", json={}, headers=headers,
                         timeout=30)
    assert made.ok and made.json()["data"]["type"] == "aes256-gcm96"
