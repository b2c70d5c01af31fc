"""Asymmetric CMKs on the services in-process (kms.service.asymmetric): every
usage's operations, checked with `cryptography` on the public key alone; the
usage, state and rotation rules with their kms.errors classes; and that a
refusal stores nothing."""
import base64
import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from in_process import Services, new_alias, services_fixture, unchanged  # noqa: F401
from kms import errors
from kms.service.transit import TransitService

RSA_DECRYPT, RSA_SIGN = "ASYMMETRIC_DECRYPT_RSA_2048", "ASYMMETRIC_SIGN_VERIFY_RSA_2048"
P256, P384 = "ASYMMETRIC_SIGN_VERIFY_ECC", "ASYMMETRIC_SIGN_VERIFY_ECDSA384"
SIGNERS = [(RSA_SIGN, "rsa-pss-sha256"), (RSA_SIGN, "rsa-pkcs1-sha256"),
           (P256, "ecdsa-sha256"), (P384, "ecdsa-sha384")]
HASHES = {"rsa-pss-sha256": hashes.SHA256, "rsa-pkcs1-sha256": hashes.SHA256,
          "ecdsa-sha256": hashes.SHA256, "ecdsa-sha384": hashes.SHA384}


def new_key(services: Services, usage: str) -> str:
    return str(services.keys.create_key(new_alias(), usage=usage)["id"])


def public_of(services: Services, key_id: str):
    der, pem = services.asymmetric.public_key(key_id)
    public = serialization.load_der_public_key(der)
    assert serialization.load_pem_public_key(pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == der
    return public


def verify_locally(public, scheme: str, signature: bytes, message: bytes) -> None:
    """Raises InvalidSignature unless `cryptography` accepts it."""
    algorithm = HASHES[scheme]()
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, message, ec.ECDSA(algorithm))
    elif scheme == "rsa-pss-sha256":
        # Signed with a salt of the digest's length (32 bytes), stated exactly here.
        public.verify(signature, message, padding.PSS(padding.MGF1(algorithm), 32), algorithm)
    else:
        public.verify(signature, message, padding.PKCS1v15(), algorithm)


@pytest.mark.parametrize("usage, scheme", SIGNERS)
def test_signatures_verify_with_cryptography(services, usage, scheme):
    key_id = new_key(services, usage)
    public = public_of(services, key_id)
    message = os.urandom(300)
    raw = services.asymmetric.sign(key_id, scheme, message, is_digest=False)
    verify_locally(public, scheme, raw, message)
    digest = hashlib.new(HASHES[scheme]().name, message).digest()
    from_digest = services.asymmetric.sign(key_id, scheme, digest, is_digest=True)
    verify_locally(public, scheme, from_digest, message)
    assert services.asymmetric.verify(key_id, scheme, message, False, raw)
    assert services.asymmetric.verify(key_id, scheme, digest, True, raw)
    assert not services.asymmetric.verify(key_id, scheme, message + b"!", False, raw)


def test_curves_and_sizes(services):
    assert public_of(services, new_key(services, P256)).curve.name == "secp256r1"
    assert public_of(services, new_key(services, P384)).curve.name == "secp384r1"
    for usage in (RSA_SIGN, RSA_DECRYPT):
        public = public_of(services, new_key(services, usage))
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048


def test_a_signature_made_locally_verifies_on_the_server(services):
    """Verification is checked against an independent signer: a signature
    `cryptography` makes with another key is refused, one it cannot make
    (over another message) too."""
    key_id = new_key(services, P256)
    stranger = ec.generate_private_key(ec.SECP256R1())
    foreign = stranger.sign(b"message", ec.ECDSA(hashes.SHA256()))
    assert not services.asymmetric.verify(key_id, "ecdsa-sha256", b"message", False, foreign)
    r, s = utils.decode_dss_signature(services.asymmetric.sign(key_id, "ecdsa-sha256", b"m", False))
    n = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
    # (r, n - s) is the other valid signature; (r, s + 1) is not one.
    assert services.asymmetric.verify(key_id, "ecdsa-sha256", b"m", False,
                                      utils.encode_dss_signature(r, n - s))
    assert not services.asymmetric.verify(key_id, "ecdsa-sha256", b"m", False,
                                          utils.encode_dss_signature(r, s + 1))


@pytest.mark.parametrize("name, local", [
    ("rsa-pkcs1", padding.PKCS1v15()),
    ("rsa-oaep-sha1", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)),
    ("rsa-oaep-sha256", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)),
])
def test_ciphertexts_made_locally_decrypt(services, name, local):
    key_id = new_key(services, RSA_DECRYPT)
    secret = os.urandom(32)
    ciphertext = public_of(services, key_id).encrypt(secret, local)
    assert services.asymmetric.decrypt(key_id, name, ciphertext) == secret
    other = "rsa-oaep-sha256" if name != "rsa-oaep-sha256" else "rsa-oaep-sha1"
    with unchanged(services), pytest.raises(errors.AsymmetricDecryptFailed):
        services.asymmetric.decrypt(key_id, other, ciphertext)
    with pytest.raises(errors.AsymmetricDecryptFailed):
        services.asymmetric.decrypt(key_id, name, ciphertext[:-1])


def test_each_usage_does_only_its_own_operations(services):
    decrypt_key, sign_key, ecc = (new_key(services, u) for u in (RSA_DECRYPT, RSA_SIGN, P256))
    with unchanged(services):
        with pytest.raises(errors.InvalidKeyUsage):
            services.asymmetric.sign(decrypt_key, "rsa-pss-sha256", b"m", False)
        with pytest.raises(errors.InvalidKeyUsage):
            services.asymmetric.decrypt(sign_key, "rsa-oaep-sha256", bytes(256))
        with pytest.raises(errors.InvalidKeyUsage):  # the scheme of another kind of key
            services.asymmetric.sign(ecc, "rsa-pss-sha256", b"m", False)
        with pytest.raises(errors.InvalidKeyUsage):
            services.asymmetric.sign(sign_key, "ecdsa-sha256", b"m", False)
        with pytest.raises(errors.InvalidKeyUsage):
            services.asymmetric.decrypt(ecc, "rsa-pkcs1", bytes(256))


def test_a_symmetric_key_has_no_public_key(services):
    key_id = services.keys.create_key(new_alias())["id"]
    with unchanged(services):
        with pytest.raises(errors.KeyNotAsymmetric):
            services.asymmetric.public_key(key_id)
        with pytest.raises(errors.KeyNotAsymmetric):
            services.asymmetric.sign(key_id, "ecdsa-sha256", b"m", False)


def test_asymmetric_keys_cannot_encrypt_blobs(services):
    from kms.service.crypto import KeyTypeCannot

    for usage in (RSA_DECRYPT, P256):
        key_id = new_key(services, usage)
        with unchanged(services), pytest.raises(KeyTypeCannot):
            services.blobs.encrypt(key_id, b"data")


@pytest.mark.parametrize("make_state", ["disable", "archive", "pending_delete"])
def test_only_enabled_keys_serve(services, make_state):
    key_id = new_key(services, P256)
    signature = services.asymmetric.sign(key_id, "ecdsa-sha256", b"m", False)
    if make_state == "disable":
        services.keys.disable(key_id)
    elif make_state == "archive":
        services.keys.archive(key_id)
    else:
        services.keys.disable(key_id)
        services.keys.schedule_deletion(key_id, 7)
    with unchanged(services):
        for call in (lambda: services.asymmetric.public_key(key_id),
                     lambda: services.asymmetric.sign(key_id, "ecdsa-sha256", b"m", False),
                     lambda: services.asymmetric.verify(key_id, "ecdsa-sha256", b"m", False, signature)):
            with pytest.raises(errors.KeyStateError) as raised:
                call()
            assert type(raised.value) is errors.KeyStateError  # CmkStateNotSupport, not "disabled"


def test_asymmetric_keys_do_not_rotate(services):
    key_id = new_key(services, RSA_SIGN)
    with unchanged(services):
        with pytest.raises(errors.RotateNotSupported):
            services.keys.enable_rotation(key_id, 30)
        with pytest.raises(errors.RotateNotSupported):
            services.keys.rotate(key_id)
        with pytest.raises(errors.RotateNotSupported):
            services.keys.rotate(key_id, manual_rules=False)


def test_imported_material_is_for_symmetric_keys_only(services):
    with unchanged(services), pytest.raises(errors.UnsupportedOperation):
        services.keys.create_key(new_alias(), usage=P256, external=True)


def test_digest_and_message_sizes(services):
    p256, p384 = new_key(services, P256), new_key(services, P384)
    with unchanged(services):
        with pytest.raises(errors.InvalidParameter):
            services.asymmetric.sign(p256, "ecdsa-sha256", bytes(31), True)
        with pytest.raises(errors.InvalidParameter):  # SHA-384's digest is 48 bytes
            services.asymmetric.sign(p384, "ecdsa-sha384", bytes(32), True)
        with pytest.raises(errors.InvalidParameter):
            services.asymmetric.sign(p256, "ecdsa-sha256", bytes(4097), False)
    services.asymmetric.sign(p384, "ecdsa-sha384", bytes(48), True)
    services.asymmetric.sign(p256, "ecdsa-sha256", bytes(4096), False)


def test_signatures_of_an_impossible_size_are_refused(services):
    rsa_key, ecc = new_key(services, RSA_SIGN), new_key(services, P256)
    good = services.asymmetric.sign(rsa_key, "rsa-pss-sha256", b"m", False)
    for wrong in (good[:-1], good + b"\0"):
        with pytest.raises(errors.MalformedSignature):
            services.asymmetric.verify(rsa_key, "rsa-pss-sha256", b"m", False, wrong)
    with pytest.raises(errors.MalformedSignature):
        services.asymmetric.verify(ecc, "ecdsa-sha256", b"m", False, bytes(80))
    # A possible size that is not DER is simply not a valid signature.
    assert not services.asymmetric.verify(ecc, "ecdsa-sha256", b"m", False, bytes(64))


def test_one_key_in_both_apis(services):
    """A Tencent CMK and a transit key are one thing: a P-256 CMK signs
    through transit and the signature verifies here, and a transit
    ecdsa-p384 key signs here."""
    transit = TransitService(services.keys)
    alias = new_alias()
    key_id = services.keys.create_key(alias, usage=P256)["id"]
    record = transit.record(alias)
    assert record is not None and record["id"] == key_id
    signature = transit.sign(record, b"both", None, None)
    der = base64.b64decode(signature.split(":")[2])
    assert services.asymmetric.verify(key_id, "ecdsa-sha256", b"both", False, der)
    # Its usage holds in transit too: a sign-only RSA CMK does not encrypt there.
    rsa_alias = new_alias()
    services.keys.create_key(rsa_alias, usage=RSA_SIGN)
    from kms.service.crypto import Item, KeyTypeCannot, plan_encrypt
    with pytest.raises(KeyTypeCannot):
        plan_encrypt(transit.record(rsa_alias), [Item(b"x")])

    made = transit.create(new_alias(), "ecdsa-p384")
    assert made["usage"] == P384
    local = services.asymmetric.sign(made["id"], "ecdsa-sha384", b"m", False)
    public_of(services, made["id"]).verify(local, b"m", ec.ECDSA(hashes.SHA384()))
    assert transit.verify(made, b"m", "vault:v1:" + base64.b64encode(local).decode(),
                          "sha2-384")
