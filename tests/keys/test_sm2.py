"""SM2 on libcrypto (kms.keys.sm2) against the shared vectors (GB/T 32918
worked examples, generated edge cases, must-reject cases) and differentially
against gmssl, an independent pure-Python SM2."""
import json
import os

import pytest
from gmssl import sm2 as gmssl_sm2
from vector_files import open_vector_file

from kms.keys import sm2

pytestmark = pytest.mark.skipif(not sm2.available(), reason="no OpenSSL 3 libcrypto with SM2 here")


def groups(name, curve="sm2p256v1"):
    data = json.loads(open_vector_file(f"sm/{name}").read_text())
    return {g["name"]: g["tests"] for g in data["testGroups"] if g.get("curve", curve) == curve}


def vectors_of(name, kind):
    return [t for group, tests in groups(name).items() if group.startswith(kind) for t in tests]


def public(test):
    return sm2.SM2PublicKey(bytes.fromhex(test["pub_hex"]))


@pytest.mark.parametrize("test", vectors_of("sm2_sign.json", "sign_"), ids=lambda t: str(t["tcId"]))
def test_known_signatures_verify_and_keys_match(test):
    key = sm2.SM2PrivateKey(bytes.fromhex(test["priv_hex"]))
    assert key.point == bytes.fromhex(test["pub_hex"])  # d * G
    message, signer = bytes.fromhex(test["msg_hex"]), bytes.fromhex(test["id_hex"])
    signature = bytes.fromhex(test["sig_der_hex"])
    assert key.public_key().verify(signature, message, signer)
    assert key.public_key().verify_digest(signature, bytes.fromhex(test["e_hex"]))
    # Our own signature (random k) over the same input verifies as well.
    assert key.public_key().verify(key.sign(message, signer), message, signer)
    assert key.public_key().verify_digest(key.sign_digest(bytes.fromhex(test["e_hex"])), bytes.fromhex(test["e_hex"]))


@pytest.mark.parametrize("test", vectors_of("sm2_sign.json", "verify_valid"), ids=lambda t: str(t["tcId"]))
def test_valid_signatures_verify(test):
    assert public(test).verify(bytes.fromhex(test["sig_der_hex"]), bytes.fromhex(test["msg_hex"]),
                               bytes.fromhex(test["id_hex"]))


@pytest.mark.parametrize("test", vectors_of("sm2_sign.json", "verify_digest"), ids=lambda t: str(t["tcId"]))
def test_signatures_of_a_digest(test):
    assert public(test).verify_digest(bytes.fromhex(test["sig_der_hex"]), bytes.fromhex(test["e_hex"])) \
        is (test["result"] == "valid")


@pytest.mark.parametrize("test", vectors_of("sm2_sign.json", "verify_invalid"), ids=lambda t: str(t["tcId"]))
def test_invalid_signatures_are_refused(test):
    try:
        key = public(test)
    except sm2.SM2Error:
        assert "InvalidPublicKey" in test["flags"]
        return
    signature = bytes.fromhex(test["sig_der_hex"])
    if "e_hex" in test:
        assert not key.verify_digest(signature, bytes.fromhex(test["e_hex"]))
    else:
        assert not key.verify(signature, bytes.fromhex(test["msg_hex"]), bytes.fromhex(test["id_hex"]))


@pytest.mark.parametrize("test", vectors_of("sm2_encrypt.json", "encrypt_") + vectors_of("sm2_encrypt.json", "decrypt_kat"),
                         ids=lambda t: str(t["tcId"]))
def test_known_ciphertexts_decrypt_in_both_layouts(test):
    key = sm2.SM2PrivateKey(bytes.fromhex(test["priv_hex"]))
    message = bytes.fromhex(test["msg_hex"])
    der, raw = bytes.fromhex(test["der_hex"]), bytes.fromhex(test["c1c3c2_hex"])
    assert key.decrypt(der) == message
    assert key.decrypt(raw) == message
    assert sm2.raw_from_asn1(der) == raw and sm2.asn1_from_raw(raw) == der


@pytest.mark.parametrize("test", vectors_of("sm2_encrypt.json", "decrypt_invalid"), ids=lambda t: str(t["tcId"]))
def test_invalid_ciphertexts_are_refused(test):
    key = sm2.SM2PrivateKey(bytes.fromhex(test["priv_hex"]))
    for field in ("der_hex", "c1c3c2_hex"):
        if test.get(field):
            with pytest.raises(sm2.SM2Error):
                key.decrypt(bytes.fromhex(test[field]))


# ---- against gmssl ----------------------------------------------------------------


def gmssl_for(key: sm2.SM2PrivateKey, d: bytes):
    # mode 1: C1C3C2; gmssl writes C1 without its 04 byte and signatures in DER with asn1=True.
    return gmssl_sm2.CryptSM2(private_key=d.hex(), public_key=key.point[1:].hex(), mode=1, asn1=True)


@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 200, 4096])
def test_signatures_agree_with_gmssl(size):
    d = sm2.generate()
    key, message = sm2.SM2PrivateKey(d), os.urandom(size)
    other = gmssl_for(key, d)
    assert other.verify_with_sm3(key.sign(message).hex(), message)
    assert key.public_key().verify(bytes.fromhex(other.sign_with_sm3(message)), message)
    assert not key.public_key().verify(bytes.fromhex(other.sign_with_sm3(message + b"x")), message)


@pytest.mark.parametrize("size", [1, 16, 32, 100, 1000])
def test_ciphertexts_agree_with_gmssl(size):
    d = sm2.generate()
    key, message = sm2.SM2PrivateKey(d), os.urandom(size)
    other = gmssl_for(key, d)
    ours = sm2.raw_from_asn1(key.public_key().encrypt(message))
    assert len(ours) == 65 + 32 + size
    assert other.decrypt(ours[1:]) == message
    assert key.decrypt(b"\x04" + other.encrypt(message)) == message


def test_encryption_is_randomised_and_bound_to_the_key():
    key, stranger = sm2.SM2PrivateKey(sm2.generate()), sm2.SM2PrivateKey(sm2.generate())
    first, second = (key.public_key().encrypt(b"same") for _ in range(2))
    assert first != second
    with pytest.raises(sm2.SM2Error):
        stranger.decrypt(first)


@pytest.mark.parametrize("bad", [b"", bytes(32), bytes.fromhex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54122"),
                                 b"\x01" * 31])
def test_bad_private_keys_are_refused(bad):
    with pytest.raises(sm2.SM2Error):
        sm2.SM2PrivateKey(bad)


@pytest.mark.parametrize("bad", [b"", b"\x04" + bytes(64), b"\x02" + bytes(32), b"\x04" + b"\x01" * 64])
def test_bad_public_points_are_refused(bad):
    with pytest.raises(sm2.SM2Error):
        sm2.SM2PublicKey(bad)


@pytest.mark.parametrize("bad", [b"\x30", b"\x30\x03\x02\x01", b"\x30\x84\xff\xff\xff\xff", bytes(10),
                                 b"\x04" + bytes(96)])
def test_malformed_ciphertext_layouts_are_refused(bad):
    with pytest.raises(sm2.SM2Error):
        sm2.raw_from_asn1(bad) if bad[:1] == b"\x30" else sm2.asn1_from_raw(bad)
    with pytest.raises(sm2.SM2Error):
        sm2.SM2PrivateKey(sm2.generate()).decrypt(bad)


def test_the_public_key_is_spki_on_the_sm2_curve():
    der = sm2.SM2PrivateKey(sm2.generate()).public_der()
    assert bytes.fromhex("06082a811ccf5501822d") in der  # OID 1.2.156.10197.1.301
    assert bytes.fromhex("06072a8648ce3d0201") in der  # id-ecPublicKey
