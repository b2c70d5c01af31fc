"""Transit's other key types and sign options through hvac against a real
server, each checked with an independent implementation on the client:
ecdsa-p384/p521 and rsa-3072/4096 with `cryptography` on the public key,
xchacha20-poly1305 with an XChaCha built here from `cryptography`'s ChaCha20
(HChaCha20 from one keystream block), hmac keys with Python's hmac."""
import base64
import hashlib
import hmac as hmac_module
import os
import struct

import hvac
import pytest
import requests
from conftest import ROOT_TOKEN, b64, server_fixture
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

server = server_fixture("transit-types", root_token=ROOT_TOKEN)


@pytest.fixture(scope="module")
def transit(server):
    return hvac.Client(url=f"http://{server.endpoint}", token=ROOT_TOKEN).secrets.transit


def post(server, path, body):
    return requests.post(f"http://{server.endpoint}/v1/{path}", json=body,
                         headers={"X-Vault-Token": ROOT_TOKEN}, timeout=60)


def public_key(transit, name, version="1"):
    return serialization.load_pem_public_key(transit.read_key(name)["data"]["keys"][version]["public_key"].encode())


def signature_bytes(signed):
    return base64.b64decode(signed["data"]["signature"].split(":", 2)[2])


@pytest.mark.parametrize("key_type, curve, hash_name", [
    ("ecdsa-p384", "secp384r1", "sha2-384"), ("ecdsa-p521", "secp521r1", "sha2-512")])
def test_ecdsa_curves(transit, key_type, curve, hash_name):
    name = f"t-{key_type}"
    transit.create_key(name, key_type=key_type)
    data = transit.read_key(name)["data"]
    assert data["type"] == key_type and data["supports_signing"] and not data["supports_encryption"]
    public = public_key(transit, name)
    assert public.curve.name == curve
    message = os.urandom(100)
    signed = transit.sign_data(name, hash_input=b64(message), hash_algorithm=hash_name)
    chosen = {"sha2-384": hashes.SHA384, "sha2-512": hashes.SHA512}[hash_name]()
    public.verify(signature_bytes(signed), message, ec.ECDSA(chosen))
    assert transit.verify_signed_data(name, hash_input=b64(message), hash_algorithm=hash_name,
                                      signature=signed["data"]["signature"])["data"]["valid"]
    jws = transit.sign_data(name, hash_input=b64(message), hash_algorithm=hash_name,
                            marshaling_algorithm="jws")["data"]["signature"]
    raw = base64.urlsafe_b64decode(jws.split(":", 2)[2] + "==")
    assert len(raw) == 2 * ((public.curve.key_size + 7) // 8)  # r || s, fixed size


@pytest.mark.parametrize("key_type, bits", [("rsa-3072", 3072), ("rsa-4096", 4096)])
def test_larger_rsa_keys(transit, key_type, bits):
    name = f"t-{key_type}"
    transit.create_key(name, key_type=key_type)
    public = public_key(transit, name)
    assert public.key_size == bits
    secret = os.urandom(bits // 8 - 66)  # the longest RSA-OAEP (SHA-256) takes
    ciphertext = public.encrypt(secret, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    answer = transit.decrypt_data(name, ciphertext=f"vault:v1:{b64(ciphertext)}")
    assert base64.b64decode(answer["data"]["plaintext"]) == secret
    with pytest.raises(hvac.exceptions.InvalidRequest, match="plaintext too long"):
        transit.encrypt_data(name, plaintext=b64(secret + b"!"))
    signed = transit.sign_data(name, hash_input=b64(b"m"), signature_algorithm="pss")
    public.verify(signature_bytes(signed), b"m", padding.PSS(padding.MGF1(hashes.SHA256()),
                                                              padding.PSS.AUTO), hashes.SHA256())


@pytest.mark.parametrize("salt_length, expected", [("hash", 32), ("20", 20), ("auto", 4096 // 8 - 32 - 2)])
def test_pss_salt_length(transit, salt_length, expected):
    """A PSS signature made with salt_length verifies locally with exactly that salt."""
    transit.create_key("t-rsa-salt", key_type="rsa-4096")
    public = public_key(transit, "t-rsa-salt")
    signed = transit.sign_data("t-rsa-salt", hash_input=b64(b"salted"), signature_algorithm="pss",
                               salt_length=salt_length)
    public.verify(signature_bytes(signed), b"salted", padding.PSS(padding.MGF1(hashes.SHA256()), expected),
                  hashes.SHA256())
    assert transit.verify_signed_data("t-rsa-salt", hash_input=b64(b"salted"), signature_algorithm="pss",
                                      salt_length=salt_length,
                                      signature=signed["data"]["signature"])["data"]["valid"]


def test_bad_salt_lengths(server, transit):
    transit.create_key("t-rsa-salt", key_type="rsa-4096")
    for bad in ("-1", "x", 100000):
        answer = post(server, "transit/sign/t-rsa-salt", {"input": b64(b"m"), "salt_length": bad,
                                                          "signature_algorithm": "pss"})
        assert answer.status_code == 400 and "salt length" in answer.json()["errors"][0]


def hchacha20(key, nonce16):
    """HChaCha20 (draft-irtf-cfrg-xchacha, 2.2) from one ChaCha20 block:
    the keystream is the rounds' output plus the input state, so taking the
    input's constant and nonce words back out leaves HChaCha20's."""
    block = Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor().update(bytes(64))
    words = struct.unpack("<16I", block)
    state = struct.unpack("<4I", b"expand 32-byte k") + struct.unpack("<8I", key) + struct.unpack("<4I", nonce16)
    out = [(words[i] - state[i]) % 2**32 for i in (0, 1, 2, 3, 12, 13, 14, 15)]
    return struct.pack("<8I", *out)


def xchacha_decrypt(key, nonce24, data):
    subkey = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(subkey).decrypt(bytes(4) + nonce24[16:], data, None)


def test_xchacha20_poly1305(server, transit):
    # hvac's create_key knows neither this type nor hmac's key_size: the API directly.
    assert post(server, "transit/keys/t-xchacha", {"type": "xchacha20-poly1305", "exportable": True}).ok
    secret = os.urandom(300)
    ciphertext = transit.encrypt_data("t-xchacha", plaintext=b64(secret))["data"]["ciphertext"]
    body = base64.b64decode(ciphertext.split(":", 2)[2])
    assert len(body) == 24 + len(secret) + 16  # nonce (24 bytes), ciphertext, tag
    key = base64.b64decode(transit.export_key("t-xchacha", "encryption-key")["data"]["keys"]["1"])
    assert xchacha_decrypt(key, body[:24], body[24:]) == secret
    assert base64.b64decode(transit.decrypt_data("t-xchacha", ciphertext=ciphertext)["data"]["plaintext"]) == secret
    damaged = "vault:v1:" + b64(body[:-1] + bytes([body[-1] ^ 1]))
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.decrypt_data("t-xchacha", ciphertext=damaged)


def test_hmac_keys(server, transit):
    assert post(server, "transit/keys/t-hmac", {"type": "hmac", "key_size": 64, "exportable": True}).ok
    data = transit.read_key("t-hmac")["data"]
    assert data["type"] == "hmac" and not data["supports_encryption"] and not data["supports_signing"]
    key = base64.b64decode(transit.export_key("t-hmac", "hmac-key")["data"]["keys"]["1"])
    assert len(key) == 64
    mac = transit.generate_hmac("t-hmac", hash_input=b64(b"message"), algorithm="sha2-512")["data"]["hmac"]
    expected = hmac_module.new(key, b"message", hashlib.sha512).digest()
    assert base64.b64decode(mac.split(":", 2)[2]) == expected
    assert transit.verify_signed_data("t-hmac", hash_input=b64(b"message"), hmac=mac,
                                      hash_algorithm="sha2-512")["data"]["valid"]
    assert post(server, "transit/encrypt/t-hmac", {"plaintext": b64(b"x")}).status_code == 400
    for body in ({"type": "hmac", "key_size": 16}, {"type": "hmac", "key_size": 1024},
                 {"type": "aes256-gcm96", "key_size": 32}):
        answer = post(server, "transit/keys/t-bad-size", body)
        assert answer.status_code == 400 and "key_size" in answer.json()["errors"][0]


@pytest.mark.parametrize("path, body, message", [
    ("transit/random", {"bytes": 0}, "'bytes' cannot be less than 1"),
    ("transit/random/131073", {}, "'bytes' should be less than 131072"),
    ("transit/random", {"format": "base32"}, 'unsupported encoding format "base32"; must be "hex" or "base64"'),
    ("transit/random/seal/16", {}, 'unsupported entropy source "seal"'),
])
def test_random_refusals(server, path, body, message):
    answer = post(server, path, body)
    assert answer.status_code == 400 and answer.json()["errors"][0].startswith(message)


@pytest.mark.parametrize("path", ["transit/random/all/24", "transit/random/platform/24", "transit/random/24"])
def test_random_sources(server, path):
    answer = post(server, path, {"format": "hex"})
    assert answer.status_code == 200 and len(bytes.fromhex(answer.json()["data"]["random_bytes"])) == 24


# ---- bring your own key ---------------------------------------------------------------


def wrap_for_import(server, material, hash_name="SHA256"):
    """What a BYOK client sends: RSA-OAEP of an ephemeral AES key under the
    server's wrapping key, then the material wrapped by it with AES-KWP."""
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

    answer = requests.get(f"http://{server.endpoint}/v1/transit/wrapping_key",
                          headers={"X-Vault-Token": ROOT_TOKEN}, timeout=60)
    public = serialization.load_pem_public_key(answer.json()["data"]["public_key"].encode())
    assert public.key_size == 4096
    chosen = getattr(hashes, hash_name)()
    ephemeral = os.urandom(32)
    head = public.encrypt(ephemeral, padding.OAEP(padding.MGF1(chosen), chosen, None))
    return b64(head + aes_key_wrap_with_padding(ephemeral, material))


def test_import_aes_then_use_and_add_versions(server, transit):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    material = os.urandom(32)
    assert post(server, "transit/keys/t-byok/import", {"ciphertext": wrap_for_import(server, material),
                                                       "type": "aes256-gcm96"}).status_code == 204
    data = transit.read_key("t-byok")["data"]
    assert data["imported_key"] is True and data["latest_version"] == 1
    ciphertext = transit.encrypt_data("t-byok", plaintext=b64(b"bring your own"))["data"]["ciphertext"]
    body = base64.b64decode(ciphertext.split(":", 2)[2])
    assert AESGCM(material).decrypt(body[:12], body[12:], None) == b"bring your own"  # the material is the key

    second = os.urandom(32)
    assert post(server, "transit/keys/t-byok/import_version",
                {"ciphertext": wrap_for_import(server, second, "SHA512"), "hash_function": "SHA512"}).status_code == 204
    assert transit.read_key("t-byok")["data"]["latest_version"] == 2
    newer = base64.b64decode(transit.encrypt_data("t-byok", plaintext=b64(b"v2"))["data"]["ciphertext"].split(":", 2)[2])
    assert AESGCM(second).decrypt(newer[:12], newer[12:], None) == b"v2"
    assert base64.b64decode(transit.decrypt_data("t-byok", ciphertext=ciphertext)["data"]["plaintext"]) == b"bring your own"
    refused = post(server, "transit/keys/t-byok/rotate", {})
    assert refused.status_code == 400 and "imported" in refused.json()["errors"][0]
    again = post(server, "transit/keys/t-byok/import", {"ciphertext": wrap_for_import(server, material)})
    assert again.status_code == 400 and "existing key" in again.json()["errors"][0]


def test_import_asymmetric_keys(server, transit):
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    assert post(server, "transit/keys/t-byok-rsa/import", {"ciphertext": wrap_for_import(server, der),
                                                           "type": "rsa-2048"}).status_code == 204
    signed = transit.sign_data("t-byok-rsa", hash_input=b64(b"mine"), signature_algorithm="pkcs1v15")
    private.public_key().verify(signature_bytes(signed), b"mine", padding.PKCS1v15(), hashes.SHA256())

    seed = ed25519.Ed25519PrivateKey.generate()
    pkcs8 = seed.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    assert post(server, "transit/keys/t-byok-ed/import", {"ciphertext": wrap_for_import(server, pkcs8),
                                                          "type": "ed25519"}).status_code == 204
    signature = signature_bytes(transit.sign_data("t-byok-ed", hash_input=b64(b"mine")))
    seed.public_key().verify(signature, b"mine")


@pytest.mark.parametrize("case", ["bad tag", "wrong type", "wrong curve", "garbage"])
def test_bad_imports_are_refused_and_store_nothing(server, transit, case):
    from cryptography.hazmat.primitives.asymmetric import ec as ec_module

    material, key_type = os.urandom(32), "aes256-gcm96"
    ciphertext = wrap_for_import(server, material)
    if case == "bad tag":
        raw = base64.b64decode(ciphertext)
        ciphertext = b64(raw[:-1] + bytes([raw[-1] ^ 1]))
    elif case == "wrong type":
        key_type = "aes128-gcm96"
    elif case == "wrong curve":
        key_type = "ecdsa-p256"
        ciphertext = wrap_for_import(server, ec_module.generate_private_key(ec_module.SECP384R1()).private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    else:
        ciphertext = b64(os.urandom(600))
    name = f"t-bad-import-{case.replace(' ', '-')}"
    answer = post(server, f"transit/keys/{name}/import", {"ciphertext": ciphertext, "type": key_type})
    assert answer.status_code == 400 and answer.json()["errors"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key(name)


# ---- soft delete, datakey batches ---------------------------------------------------------


def test_soft_delete_refuses_every_use_until_restored(server, transit):
    transit.create_key("t-soft")
    ciphertext = transit.encrypt_data("t-soft", plaintext=b64(b"kept"))["data"]["ciphertext"]
    answer = requests.delete(f"http://{server.endpoint}/v1/transit/keys/t-soft/soft-delete",
                             headers={"X-Vault-Token": ROOT_TOKEN}, timeout=30)
    assert answer.status_code == 204
    assert transit.read_key("t-soft")["data"]["soft_deleted"] is True
    for path, body in (("transit/encrypt/t-soft", {"plaintext": b64(b"x")}),
                       ("transit/decrypt/t-soft", {"ciphertext": ciphertext}),
                       ("transit/rewrap/t-soft", {"ciphertext": ciphertext}),
                       ("transit/hmac/t-soft", {"input": b64(b"x")}),
                       ("transit/datakey/plaintext/t-soft", {})):
        refused = post(server, path, body)
        assert refused.status_code == 400 and refused.json()["errors"] == ["refusing to use soft-deleted key"], path
    missing = requests.delete(f"http://{server.endpoint}/v1/transit/keys/t-never/soft-delete",
                              headers={"X-Vault-Token": ROOT_TOKEN}, timeout=30)
    assert missing.status_code == 204  # as OpenBao answers
    assert post(server, "transit/keys/t-soft/soft-delete-restore", {}).status_code == 204
    assert base64.b64decode(transit.decrypt_data("t-soft", ciphertext=ciphertext)["data"]["plaintext"]) == b"kept"


def test_soft_deleted_keys_refuse_the_tencent_api_too(server, transit):
    from conftest import sdk_client
    from test_tencent_api import call, error_of

    transit.create_key("t-soft-both")
    kms = sdk_client(server.endpoint)
    listed = call(kms, "ListKeyDetail", SearchKeyAlias="t-soft-both", KeyUsage="ALL").KeyMetadatas
    key_id = listed[0].KeyId
    requests.delete(f"http://{server.endpoint}/v1/transit/keys/t-soft-both/soft-delete",
                    headers={"X-Vault-Token": ROOT_TOKEN}, timeout=30)
    assert error_of(kms, "Encrypt", KeyId=key_id, Plaintext=b64(b"x")) == "ResourceUnavailable.CmkStateNotSupport"


def test_datakey_batches_are_refused(server, transit):
    transit.create_key("t-datakey")
    answer = post(server, "transit/datakey/plaintext/t-datakey", {"batch_input": [{}, {}]})
    assert answer.status_code == 400 and "batch_input is not supported" in answer.json()["errors"][0]
