"""Asymmetric CMKs through the official Tencent Cloud SDK against a real
server: every usage x algorithm pair, checked on the client side with
`cryptography` and the public key alone; ciphertexts made locally decrypting
on the server; the usage, state and rotation rules with their codes; and the
same keys through hvac's transit client."""
import base64
import hashlib
import os

import hvac
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from test_tencent_api import call, error_of, new_key

from conftest import ROOT_TOKEN, b64

RSA_DECRYPT, RSA_SIGN = "ASYMMETRIC_DECRYPT_RSA_2048", "ASYMMETRIC_SIGN_VERIFY_RSA_2048"
P256, P384 = "ASYMMETRIC_SIGN_VERIFY_ECC", "ASYMMETRIC_SIGN_VERIFY_ECDSA384"
SM2_DECRYPT, SM2_SIGN = "ASYMMETRIC_DECRYPT_SM2", "ASYMMETRIC_SIGN_VERIFY_SM2"
PAIRS = [(RSA_SIGN, "RSA_PSS_SHA_256", hashes.SHA256), (RSA_SIGN, "RSA_PKCS1_SHA_256", hashes.SHA256),
         (P256, "ECC_P256_R1", hashes.SHA256), (P384, "ECC_P384_R1", hashes.SHA384)]


def public_key(kms, key_id):
    answer = call(kms, "GetPublicKey", KeyId=key_id)
    assert answer.KeyId == key_id
    der = base64.b64decode(answer.PublicKey)
    pem = serialization.load_pem_public_key(answer.PublicKeyPem.encode())
    assert pem.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == der
    return serialization.load_der_public_key(der)


def check_locally(public, algorithm, hash_type, signature, message):
    if algorithm.startswith("ECC"):
        public.verify(signature, message, ec.ECDSA(hash_type()))
    elif algorithm == "RSA_PSS_SHA_256":
        public.verify(signature, message, padding.PSS(padding.MGF1(hash_type()), 32), hash_type())
    else:
        public.verify(signature, message, padding.PKCS1v15(), hash_type())


@pytest.mark.parametrize("usage, algorithm, hash_type", PAIRS)
def test_sign_and_verify(kms, usage, algorithm, hash_type):
    key_id = new_key(kms, KeyUsage=usage)
    public = public_key(kms, key_id)
    message = os.urandom(1000)
    raw = base64.b64decode(call(kms, "SignByAsymmetricKey", KeyId=key_id, Algorithm=algorithm,
                                Message=b64(message)).Signature)
    check_locally(public, algorithm, hash_type, raw, message)
    digest = hashlib.new(hash_type().name, message).digest()
    signed_digest = base64.b64decode(call(kms, "SignByAsymmetricKey", KeyId=key_id, Algorithm=algorithm,
                                          Message=b64(digest), MessageType="DIGEST").Signature)
    check_locally(public, algorithm, hash_type, signed_digest, message)
    assert call(kms, "VerifyByAsymmetricKey", KeyId=key_id, Algorithm=algorithm, Message=b64(message),
                SignatureValue=b64(raw)).SignatureValid is True
    assert call(kms, "VerifyByAsymmetricKey", KeyId=key_id, Algorithm=algorithm, Message=b64(digest),
                MessageType="DIGEST", SignatureValue=b64(raw)).SignatureValid is True
    assert call(kms, "VerifyByAsymmetricKey", KeyId=key_id, Algorithm=algorithm, Message=b64(message[1:]),
                SignatureValue=b64(raw)).SignatureValid is False


@pytest.mark.parametrize("algorithm, local", [
    ("RSAES_PKCS1_V1_5", padding.PKCS1v15()),
    ("RSAES_OAEP_SHA_1", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)),
    ("RSAES_OAEP_SHA_256", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)),
])
def test_rsa_ciphertexts_made_locally_decrypt_on_the_server(kms, algorithm, local):
    key_id = new_key(kms, KeyUsage=RSA_DECRYPT)
    secret = os.urandom(48)
    ciphertext = public_key(kms, key_id).encrypt(secret, local)
    answer = call(kms, "AsymmetricRsaDecrypt", KeyId=key_id, Ciphertext=b64(ciphertext), Algorithm=algorithm)
    assert (answer.KeyId, base64.b64decode(answer.Plaintext)) == (key_id, secret)
    other = "RSAES_OAEP_SHA_256" if algorithm != "RSAES_OAEP_SHA_256" else "RSAES_OAEP_SHA_1"
    assert error_of(kms, "AsymmetricRsaDecrypt", KeyId=key_id, Ciphertext=b64(ciphertext),
                    Algorithm=other) == "FailedOperation.DecryptError"


def test_create_describe_and_list(kms):
    made = {usage: new_key(kms, KeyUsage=usage) for usage in (RSA_DECRYPT, RSA_SIGN, P256, P384)}
    for usage, key_id in made.items():
        metadata = call(kms, "DescribeKey", KeyId=key_id).KeyMetadata
        assert (metadata.KeyUsage, metadata.KeyState, metadata.Origin) == (usage, "Enabled", "TENCENT_KMS")
        listed = call(kms, "ListKeyDetail", KeyUsage=usage, Limit=200).KeyMetadatas
        assert key_id in {m.KeyId for m in listed} and {m.KeyUsage for m in listed} == {usage}
    symmetric = call(kms, "ListKeyDetail", Limit=200).KeyMetadatas  # the default filter
    assert not set(made.values()) & {m.KeyId for m in symmetric}
    everything = call(kms, "ListKeyDetail", KeyUsage="ALL", Limit=200).KeyMetadatas
    assert set(made.values()) <= {m.KeyId for m in everything}


def test_list_algorithms_reports_what_is_offered(kms):
    answer = call(kms, "ListAlgorithms")
    pairs = {(a.KeyUsage, a.Algorithm) for a in answer.AsymmetricSignVerifyAlgorithms}
    assert pairs == {(RSA_SIGN, "RSA_2048"), (P256, "ECC"), (P384, "ECDSA384"), (SM2_SIGN, "SM2")}
    decrypting = {(a.KeyUsage, a.Algorithm) for a in answer.AsymmetricAlgorithms}
    assert decrypting == {(RSA_DECRYPT, "RSA_2048"), (SM2_DECRYPT, "SM2")}
    for usage, _ in pairs | decrypting:  # each one listed can be created
        new_key(kms, KeyUsage=usage)


def test_usage_rules(kms):
    decrypt_key, sign_key, ecc = (new_key(kms, KeyUsage=u) for u in (RSA_DECRYPT, RSA_SIGN, P256))
    symmetric = new_key(kms)
    message = b64(b"message")
    assert error_of(kms, "SignByAsymmetricKey", KeyId=decrypt_key, Algorithm="RSA_PSS_SHA_256",
                    Message=message) == "InvalidParameterValue.InvalidKeyUsage"
    assert error_of(kms, "AsymmetricRsaDecrypt", KeyId=sign_key, Ciphertext=b64(bytes(256)),
                    Algorithm="RSAES_OAEP_SHA_256") == "InvalidParameterValue.InvalidKeyUsage"
    assert error_of(kms, "SignByAsymmetricKey", KeyId=ecc, Algorithm="RSA_PKCS1_SHA_256",
                    Message=message) == "InvalidParameterValue.InvalidKeyUsage"
    assert error_of(kms, "GetPublicKey", KeyId=symmetric) == "InvalidParameterValue.InvalidKeyUsage"
    assert error_of(kms, "Encrypt", KeyId=ecc, Plaintext=message) == "InvalidParameterValue.InvalidKeyUsage"
    assert error_of(kms, "GenerateDataKey", KeyId=decrypt_key,
                    KeySpec="AES_256") == "InvalidParameterValue.InvalidKeyUsage"


def test_state_and_rotation_rules(kms):
    key_id = new_key(kms, KeyUsage=P256)
    assert error_of(kms, "EnableKeyRotation", KeyId=key_id) == "UnsupportedOperation.RotateNotSupported"
    assert error_of(kms, "RotateKey", KeyId=key_id) == "UnsupportedOperation.RotateNotSupported"
    call(kms, "DisableKey", KeyId=key_id)
    for action, params in (("GetPublicKey", {}),
                           ("SignByAsymmetricKey", {"Algorithm": "ECC_P256_R1", "Message": b64(b"m")}),
                           ("VerifyByAsymmetricKey", {"Algorithm": "ECC_P256_R1", "Message": b64(b"m"),
                                                      "SignatureValue": b64(bytes(70))})):
        assert error_of(kms, action, KeyId=key_id, **params) == "ResourceUnavailable.CmkStateNotSupport"
    call(kms, "EnableKey", KeyId=key_id)
    public_key(kms, key_id)
    assert error_of(kms, "CreateKey", Alias="imported-ecc", KeyUsage=P256, Type=2) == "UnsupportedOperation"


@pytest.mark.parametrize("action, params, code", [
    ("SignByAsymmetricKey", {"Algorithm": "ECC_P256_R1", "Message": "not base64!"}, "InvalidParameter"),
    ("SignByAsymmetricKey", {"Algorithm": "ECC_P256_R1", "Message": b64(bytes(4097))}, "InvalidParameter"),
    ("SignByAsymmetricKey", {"Algorithm": "ECC_P256_R1", "Message": b64(bytes(31)), "MessageType": "DIGEST"},
     "InvalidParameter"),
    ("SignByAsymmetricKey", {"Algorithm": "ECC_P256_R1", "Message": b64(b"m"), "MessageType": "HASH"},
     "InvalidParameter"),
    ("SignByAsymmetricKey", {"Algorithm": "ECDSA_SHA_256", "Message": b64(b"m")}, "InvalidParameter"),
    ("SignByAsymmetricKey", {"Message": b64(b"m")}, "MissingParameter"),
    ("VerifyByAsymmetricKey", {"Algorithm": "ECC_P256_R1", "Message": b64(b"m"),
                               "SignatureValue": b64(bytes(200))}, "InvalidParameterValue"),
    ("VerifyByAsymmetricKey", {"Algorithm": "ECC_P256_R1", "Message": b64(b"m"),
                               "SignatureValue": "%%%"}, "InvalidParameterValue"),
    ("AsymmetricRsaDecrypt", {"Ciphertext": b64(bytes(256))}, "MissingParameter"),
])
def test_bad_input_gets_specific_codes(kms, action, params, code):
    key_id = new_key(kms, KeyUsage=P256)
    assert error_of(kms, action, KeyId=key_id, **params) == code


def test_wrong_rsa_signature_length_is_a_parameter_error(kms):
    key_id = new_key(kms, KeyUsage=RSA_SIGN)
    for size in (255, 257):
        assert error_of(kms, "VerifyByAsymmetricKey", KeyId=key_id, Algorithm="RSA_PSS_SHA_256",
                        Message=b64(b"m"), SignatureValue=b64(bytes(size))) == "InvalidParameterValue"


def test_one_key_in_both_apis(kms, server):
    """A CMK made here signs through transit; a transit key signs here."""
    transit = hvac.Client(url=f"http://{server.endpoint}", token=ROOT_TOKEN).secrets.transit
    alias = "both-apis-p256"
    key_id = new_key(kms, Alias=alias, KeyUsage=P256)
    signed = transit.sign_data(alias, hash_input=b64(b"shared"))["data"]["signature"]
    der = base64.b64decode(signed.split(":")[2])
    assert call(kms, "VerifyByAsymmetricKey", KeyId=key_id, Algorithm="ECC_P256_R1", Message=b64(b"shared"),
                SignatureValue=b64(der)).SignatureValid is True

    transit.create_key("made-in-transit-p384", key_type="ecdsa-p384")
    made = transit.read_key("made-in-transit-p384")["data"]
    assert made["type"] == "ecdsa-p384" and made["keys"]["1"]["name"] == "P-384"
    listed = call(kms, "ListKeyDetail", KeyUsage=P384, SearchKeyAlias="made-in-transit-p384").KeyMetadatas
    (metadata,) = listed
    signature = call(kms, "SignByAsymmetricKey", KeyId=metadata.KeyId, Algorithm="ECC_P384_R1",
                     Message=b64(b"shared")).Signature
    public = serialization.load_pem_public_key(made["keys"]["1"]["public_key"].encode())
    public.verify(base64.b64decode(signature), b"shared", ec.ECDSA(hashes.SHA384()))
    assert transit.verify_signed_data("made-in-transit-p384", hash_input=b64(b"shared"),
                                      signature=f"vault:v1:{signature}",
                                      hash_algorithm="sha2-384")["data"]["valid"] is True


def test_console_creates_and_shows_asymmetric_keys(kms, server):
    from test_console_security import Console, create_key_in_console, page

    console = Console(server).sign_in()
    dialog = console.get("/console/keys/new").text
    for usage in (RSA_DECRYPT, RSA_SIGN, P256, P384, "ENCRYPT_DECRYPT"):
        assert f'value="{usage}"' in dialog
    key_id = create_key_in_console(console, "console-p384", KeyUsage=P384)
    assert call(kms, "DescribeKey", KeyId=key_id).KeyMetadata.KeyUsage == P384
    shown = console.get(f"/console/keys/{key_id}")
    assert shown.status_code == 200
    pem = page(shown).field("PublicKeyPem")
    assert pem == call(kms, "GetPublicKey", KeyId=key_id).PublicKeyPem.strip()
    actions = {form["action"].rsplit("/", 1)[-1] for form in page(shown).forms}
    # No forms for what an asymmetric key cannot do: rotate, encrypt, data keys.
    assert not actions & {"Encrypt", "Decrypt", "GenerateDataKey", "RotateKey", "EnableKeyRotation"}
    assert "DisableKey" in actions
    call(kms, "DisableKey", KeyId=key_id)
    assert "BEGIN PUBLIC KEY" not in console.get(f"/console/keys/{key_id}").text


# ---- SM2 -----------------------------------------------------------------------------


def sm2_point(kms, key_id):
    """The key's public point (04 || x || y), read from GetPublicKey's DER
    SubjectPublicKeyInfo on the SM2 curve; the PEM holds the same DER."""
    answer = call(kms, "GetPublicKey", KeyId=key_id)
    der = base64.b64decode(answer.PublicKey)
    pem_body = "".join(line for line in answer.PublicKeyPem.splitlines() if "-----" not in line)
    assert base64.b64decode(pem_body) == der
    assert bytes.fromhex("06082a811ccf5501822d") in der  # the SM2 curve's OID
    assert der[-66:-65] == b"\x00" and der[-65] == 4  # BIT STRING, no unused bits, uncompressed point
    return der[-65:]


def sm3(data):
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


SM2_CURVE = bytes.fromhex(  # a, b, xG, yG of the SM2 curve (GB/T 32918.5)
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC"
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93"
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")


def sm2_z(point, signer_id=b"1234567812345678"):
    """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA) (GB/T 32918.2, 5.5)."""
    return sm3((8 * len(signer_id)).to_bytes(2, "big") + signer_id + SM2_CURVE + point[1:])


def gmssl_with(point):
    from gmssl import sm2 as gmssl_sm2

    return gmssl_sm2.CryptSM2(private_key=None, public_key=point[1:].hex(), mode=1, asn1=True)


def test_sm2_signatures_verify_with_an_independent_sm2(kms):
    key_id = new_key(kms, KeyUsage=SM2_SIGN)
    point = sm2_point(kms, key_id)
    other = gmssl_with(point)
    message = os.urandom(500)
    raw = base64.b64decode(call(kms, "SignByAsymmetricKey", KeyId=key_id, Algorithm="SM2DSA",
                                Message=b64(message)).Signature)
    assert other.verify_with_sm3(raw.hex(), message)  # Z over the default signer id 1234567812345678
    e = sm3(sm2_z(point) + message)  # the DIGEST input
    signed_e = base64.b64decode(call(kms, "SignByAsymmetricKey", KeyId=key_id, Algorithm="SM2DSA",
                                     Message=b64(e), MessageType="DIGEST").Signature)
    assert other.verify_with_sm3(signed_e.hex(), message)
    for body, kind in ((message, "RAW"), (e, "DIGEST")):
        assert call(kms, "VerifyByAsymmetricKey", KeyId=key_id, Algorithm="SM2DSA", Message=b64(body),
                    MessageType=kind, SignatureValue=b64(raw)).SignatureValid is True
    assert call(kms, "VerifyByAsymmetricKey", KeyId=key_id, Algorithm="SM2DSA", Message=b64(b"other"),
                SignatureValue=b64(raw)).SignatureValid is False
    assert error_of(kms, "SignByAsymmetricKey", KeyId=key_id, Algorithm="ECC_P256_R1",
                    Message=b64(message)) == "InvalidParameterValue.InvalidKeyUsage"


def test_sm2_ciphertexts_made_locally_decrypt_on_the_server(kms):
    from kms.keys import sm2

    key_id = new_key(kms, KeyUsage=SM2_DECRYPT)
    other = gmssl_with(sm2_point(kms, key_id))
    secret = os.urandom(100)
    raw = b"\x04" + other.encrypt(secret)  # gmssl's C1C3C2 leaves out the point's 04 byte
    for ciphertext in (sm2.asn1_from_raw(raw), raw):
        answer = call(kms, "AsymmetricSm2Decrypt", KeyId=key_id, Ciphertext=b64(ciphertext))
        assert base64.b64decode(answer.Plaintext) == secret
    damaged = bytearray(raw)
    damaged[70] ^= 1  # inside C3
    assert error_of(kms, "AsymmetricSm2Decrypt", KeyId=key_id,
                    Ciphertext=b64(bytes(damaged))) == "FailedOperation.DecryptError"
    over = b"\x04" + other.encrypt(os.urandom(160))  # 257 bytes
    assert error_of(kms, "AsymmetricSm2Decrypt", KeyId=key_id, Ciphertext=b64(over)) == "InvalidParameter"
    signer = new_key(kms, KeyUsage=SM2_SIGN)
    assert error_of(kms, "AsymmetricSm2Decrypt", KeyId=signer,
                    Ciphertext=b64(raw)) == "InvalidParameterValue.InvalidKeyUsage"
    assert error_of(kms, "AsymmetricRsaDecrypt", KeyId=key_id, Ciphertext=b64(raw),
                    Algorithm="RSAES_OAEP_SHA_256") == "InvalidParameterValue.InvalidKeyUsage"


def test_sm2_keys_are_not_transit_keys(kms, server):
    transit = hvac.Client(url=f"http://{server.endpoint}", token=ROOT_TOKEN).secrets.transit
    new_key(kms, Alias="sm2-not-in-transit", KeyUsage=SM2_SIGN)
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key("sm2-not-in-transit")
    refused = requests.post(f"http://{server.endpoint}/v1/transit/keys/sm2-made-in-transit",
                            json={"type": "sm2"}, headers={"X-Vault-Token": ROOT_TOKEN}, timeout=30)
    assert refused.status_code == 400 and "unknown key type sm2" in refused.json()["errors"][0]


def local_sm2_key():
    """A caller's SM2 key: (its PEM, gmssl holding its private key)."""
    from gmssl import sm2 as gmssl_sm2

    from kms.keys import asymmetric, sm2

    d = sm2.generate()
    key = sm2.SM2PrivateKey(d)
    pem = asymmetric.pem_of(key.public_der())
    return pem, gmssl_sm2.CryptSM2(private_key=d.hex(), public_key=key.point[1:].hex(), mode=1)


def test_data_keys_returned_encrypted_to_the_callers_sm2_key(kms):
    from kms.keys import sm2

    pem, holder = local_sm2_key()
    key_id = new_key(kms)
    default = call(kms, "GenerateDataKey", KeyId=key_id, KeySpec="AES_256", EncryptionPublicKey=pem)
    raw = base64.b64decode(default.Plaintext)  # EncryptionAlgorithm SM2 by default: raw C1C3C2
    assert raw[0] == 4 and len(raw) == 65 + 32 + 32
    data_key = holder.decrypt(raw[1:])
    assert len(data_key) == 32
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=default.CiphertextBlob).Plaintext) == data_key
    asn1 = call(kms, "Decrypt", CiphertextBlob=default.CiphertextBlob, EncryptionPublicKey=pem,
                EncryptionAlgorithm="SM2_C1C3C2_ASN1").Plaintext
    assert holder.decrypt(sm2.raw_from_asn1(base64.b64decode(asn1))[1:]) == data_key


@pytest.mark.parametrize("pem, algorithm", [
    ("-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----", "SM2"),
    ("MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAE", "SM2"),  # no PEM armour
    ("rsa", "SM2"),  # an RSA key where SM2 is asked for
    ("sm2", "RSAES_OAEP_SHA_256"),  # and the other way round
    ("sm2", "SM3"),
])
def test_bad_encryption_public_keys_are_refused(kms, pem, algorithm):
    from cryptography.hazmat.primitives.asymmetric import rsa

    if pem == "rsa":
        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    elif pem == "sm2":
        pem = local_sm2_key()[0]
    assert error_of(kms, "GenerateDataKey", KeyId=new_key(kms), KeySpec="AES_128", EncryptionPublicKey=pem,
                    EncryptionAlgorithm=algorithm) == "InvalidParameterValue"


def test_import_wrapped_with_an_sm2_key(kms):
    """SM-region import flow: an SM2 wrapping key (SM2PKE), material
    encrypted to it by an independent SM2, imported, then in use."""
    from gmssl import sm2 as gmssl_sm2

    from kms.keys import sm2

    key_id = new_key(kms, Type=2)
    assert error_of(kms, "GetParametersForImport", KeyId=key_id, WrappingAlgorithm="SM2PKE",
                    WrappingKeySpec="RSA_2048") == "InvalidParameter"
    assert error_of(kms, "GetParametersForImport", KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                    WrappingKeySpec="SM2") == "InvalidParameter"
    material = os.urandom(32)
    for layout in ("raw", "asn1"):
        issued = call(kms, "GetParametersForImport", KeyId=key_id, WrappingAlgorithm="SM2PKE",
                      WrappingKeySpec="SM2")
        point = sm2.public_key_from_der(base64.b64decode(issued.PublicKey)).point
        wrapper = gmssl_sm2.CryptSM2(private_key=None, public_key=point[1:].hex(), mode=1)
        raw = b"\x04" + wrapper.encrypt(material)
        wrapped = raw if layout == "raw" else sm2.asn1_from_raw(raw)
        if layout == "raw":
            damaged = bytearray(wrapped)
            damaged[-1] ^= 1
            assert error_of(kms, "ImportKeyMaterial", KeyId=key_id, ImportToken=issued.ImportToken,
                            EncryptedKeyMaterial=b64(bytes(damaged))) == "InvalidParameter.DecryptMaterialError"
            assert call(kms, "DescribeKey", KeyId=key_id).KeyMetadata.KeyState == "PendingImport"
        # the same material twice (the second import only confirms it)
        call(kms, "ImportKeyMaterial", KeyId=key_id, ImportToken=issued.ImportToken,
             EncryptedKeyMaterial=b64(wrapped))
    assert call(kms, "DescribeKey", KeyId=key_id).KeyMetadata.KeyState == "Enabled"
    blob = call(kms, "Encrypt", KeyId=key_id, Plaintext=b64(b"imported")).CiphertextBlob
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext) == b"imported"
    # The blob opens locally under the material sent: header (21 bytes, the
    # associated data with an empty context), nonce, ciphertext and tag.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw_blob = base64.b64decode(blob)
    assert AESGCM(material).decrypt(raw_blob[21:33], raw_blob[33:], raw_blob[:21]) == b"imported"
