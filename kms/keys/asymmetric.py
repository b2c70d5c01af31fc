"""Asymmetric keys once loaded: public keys, signatures over a digest, and
the fixed-size (r || s) form of ECDSA signatures. Pure: which key, version,
hash and padding to use is the service's choice (kms.service.asymmetric,
kms.service.transit)."""
import base64
from typing import Any, Callable, Dict, Optional, Type

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

# The ECDSA kinds of key material and their curves.
CURVES: Dict[str, Type[ec.EllipticCurve]] = {"ecdsa-p256": ec.SECP256R1, "ecdsa-p384": ec.SECP384R1,
                                             "ecdsa-p521": ec.SECP521R1}
# The RSA kinds and their modulus sizes.
RSA_BITS: Dict[str, int] = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}
# RSA encryption paddings by name. OAEP uses one hash for the message and for
# MGF1, and an empty label (spec/tencent-kms-api.md 2.3, "OAEP detail").
RSA_PADDINGS: Dict[str, Callable[[], Any]] = {
    "rsa-pkcs1": padding.PKCS1v15,
    "rsa-oaep-sha1": lambda: padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None),
    "rsa-oaep-sha256": lambda: padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
}


def oaep_sha256_limit(kind: str) -> int:
    """The longest plaintext RSA-OAEP with SHA-256 takes under a key of the
    kind: k - 2 * 32 - 2 bytes (RFC 8017, 7.1.1)."""
    return RSA_BITS[kind] // 8 - 66


def digest_of(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def public_der(private: Any) -> bytes:
    """The DER SubjectPublicKeyInfo of a private key's public half."""
    return bytes(private.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))


def pem_of(der: bytes) -> str:
    """The PEM text of a DER SubjectPublicKeyInfo (RFC 7468, section 13)."""
    body = base64.b64encode(der).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def sign_digest(private: Any, digest: bytes, algorithm: hashes.HashAlgorithm,
                rsa_padding: Optional[Any] = None) -> bytes:
    """An ECDSA (DER) or RSA signature over a digest made with algorithm."""
    chosen = utils.Prehashed(algorithm)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return bytes(private.sign(digest, ec.ECDSA(chosen)))
    if isinstance(private, rsa.RSAPrivateKey) and rsa_padding is not None:
        return bytes(private.sign(digest, rsa_padding, chosen))
    raise ValueError("a digest signature needs an ECDSA key, or an RSA key and its padding")


def verify_digest(public: Any, signature: bytes, digest: bytes, algorithm: hashes.HashAlgorithm,
                  rsa_padding: Optional[Any] = None) -> bool:
    """True if the signature holds; a malformed one is simply False."""
    chosen = utils.Prehashed(algorithm)
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, digest, ec.ECDSA(chosen))
        elif isinstance(public, rsa.RSAPublicKey) and rsa_padding is not None:
            public.verify(signature, digest, rsa_padding, chosen)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_ed25519(public: ed25519.Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def scalar_bytes(key: Any) -> int:
    """Bytes of one of r, s for an ECDSA key (32 for P-256, 48 for P-384)."""
    return (int(key.curve.key_size) + 7) // 8


def ecdsa_to_raw(der: bytes, size: int) -> bytes:
    r, s = utils.decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ecdsa_from_raw(raw: bytes, size: int) -> Optional[bytes]:
    """DER from r || s; None when raw is not 2 * size bytes."""
    if len(raw) != 2 * size:
        return None
    return bytes(utils.encode_dss_signature(int.from_bytes(raw[:size], "big"),
                                            int.from_bytes(raw[size:], "big")))
