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
