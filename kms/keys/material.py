"""Key material by kind: what a new key version is made of.

    aes / chacha / xchacha / hmac / sm4   random bytes of the key's size
    ed25519        the 32-byte private seed
    ecdsa-p256     PKCS#8 DER private key
    ecdsa-p384     PKCS#8 DER private key
    ecdsa-p521     PKCS#8 DER private key
    rsa-3072/4096  PKCS#8 DER private key
    rsa-2048       PKCS#8 DER private key
    sm2            the 32-byte private scalar d (kms.keys.sm2)
"""
import os
from typing import Union

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kms.keys import asymmetric, sm2

SYMMETRIC_KINDS = ("aes", "chacha", "xchacha", "hmac", "sm4")


def generate(kind: str, size: int = 32) -> bytes:
    if kind in SYMMETRIC_KINDS:
        return os.urandom(size)
    if kind == "sm2":
        return sm2.generate()
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    private: Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]
    if kind in asymmetric.CURVES:
        private = ec.generate_private_key(asymmetric.CURVES[kind]())
    elif kind in asymmetric.RSA_BITS:
        private = rsa.generate_private_key(public_exponent=65537, key_size=asymmetric.RSA_BITS[kind])
    else:
        raise ValueError(f"unknown key material kind {kind!r}")
    return private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def private_key(kind: str, material: bytes):  # type: ignore[no-untyped-def]
    if kind == "sm2":
        return sm2.SM2PrivateKey(material)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(material)
    return serialization.load_der_private_key(material, password=None)
