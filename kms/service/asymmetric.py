"""Asymmetric CMKs: their public keys, signatures and decryption, for every
API that names a key by id (the Tencent actions, the console).

The rules live here once: the key must be Enabled (the "asymmetric" row of
the state table), its usage must allow the operation (kms.service.keytypes:
an RSA key made for decrypting cannot sign), the scheme must fit the key's
kind, and a digest must be the scheme's hash size. Schemes are named here
by what they are; each adapter maps its protocol's names onto them.
The latest version is used: CMKs made for these APIs do not rotate, and a
transit key that did is used as it is now.
"""
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from kms import errors
from kms.keys import asymmetric, sm2
from kms.service.keys import KeyService, check_state
from kms.service.keytypes import key_type, usage_of

MAX_MESSAGE = 4096  # RAW messages, spec/tencent-kms-api.md, section 6


class SignatureScheme(NamedTuple):
    kinds: Tuple[str, ...]  # the material kinds that sign with it
    hash: Callable[[], hashes.HashAlgorithm]
    pss: bool = False  # RSA only: PSS, else PKCS #1 v1.5


SIGNATURE_SCHEMES: Dict[str, SignatureScheme] = {
    "rsa-pss-sha256": SignatureScheme(("rsa-2048",), hashes.SHA256, pss=True),
    "rsa-pkcs1-sha256": SignatureScheme(("rsa-2048",), hashes.SHA256),
    "ecdsa-sha256": SignatureScheme(("ecdsa-p256",), hashes.SHA256),
    "ecdsa-sha384": SignatureScheme(("ecdsa-p384",), hashes.SHA384),
    # SM2DSA: a RAW message is hashed with the Z value of the signer id
    # (kms.keys.sm2.DEFAULT_SIGNER_ID); a DIGEST is that e = SM3(Z || M).
    "sm2dsa": SignatureScheme(("sm2",), hashes.SM3),
}
MAX_SM2_CIPHERTEXT = 256  # spec 4.27 and 6


def _rsa_signature_padding(scheme: SignatureScheme, signing: bool) -> Optional[Any]:
    if scheme.kinds != ("rsa-2048",):
        return None
    if not scheme.pss:
        return padding.PKCS1v15()
    # Signed with a salt of the digest's length, the usual choice (spec 4.28
    # leaves it open); any salt length verifies.
    return padding.PSS(padding.MGF1(scheme.hash()),
                       padding.PSS.DIGEST_LENGTH if signing else padding.PSS.AUTO)


def _check_signature_size(private: Any, signature: bytes) -> None:
    """A signature no key of this kind makes (an RSA one not of the
    modulus's size, an ECDSA one longer than its DER can be) is a bad
    parameter; one of a possible size that does not hold is just False."""
    if isinstance(private, (ec.EllipticCurvePrivateKey, sm2.SM2PrivateKey)):
        size = 32 if isinstance(private, sm2.SM2PrivateKey) else asymmetric.scalar_bytes(private)
        longest = 2 * (size + 3) + 3  # SEQUENCE of two INTEGERs
        if not 8 <= len(signature) <= longest:
            raise errors.MalformedSignature(f"an ECDSA signature of this key is 8 to {longest} bytes of DER, "
                                            f"not {len(signature)}")
    elif len(signature) != private.key_size // 8:
        raise errors.MalformedSignature(f"an RSA signature of this key is {private.key_size // 8} bytes, "
                                        f"not {len(signature)}")


class AsymmetricService:
    def __init__(self, keys: KeyService) -> None:
        self.keys = keys

    def _usable(self, key_id: str, need: Optional[str]) -> Tuple[Dict[str, Any], str, Any]:
        """The key's record, material kind and private key, once the rules
        hold: asymmetric, Enabled, and (need "sign" / "decrypt") a usage
        that allows it."""
        record = self.keys.record(key_id)
        meta = key_type(record)
        if meta.kind == "sm2" and not sm2.available():
            raise sm2.SM2Unavailable("SM2 keys need OpenSSL 3 libcrypto, which this server cannot load")
        if not usage_of(record).asymmetric or not meta.asymmetric:
            raise errors.KeyNotAsymmetric(f"key {key_id} is symmetric ({record['usage']}); it has no public key")
        check_state(record, "asymmetric")
        if need == "sign" and not meta.signs:
            raise errors.InvalidKeyUsage(f"key {key_id} is {record['usage']}; it cannot sign")
        if need in ("rsa", "sm2") and not (meta.encrypts and meta.kind == ("rsa-2048" if need == "rsa" else "sm2")):
            raise errors.InvalidKeyUsage(f"key {key_id} is {record['usage']}; it cannot decrypt "
                                         f"{need.upper()} ciphertexts")
        private = self.keys.private_key(key_id, record["latest"], meta.kind)
        return record, meta.kind, private

    def public_key(self, key_id: str) -> Tuple[bytes, str]:
        """(DER SubjectPublicKeyInfo, PEM) of the key's public half."""
        _, kind, private = self._usable(key_id, None)
        der = private.public_der() if kind == "sm2" else asymmetric.public_der(private)
        return der, asymmetric.pem_of(der)

    def _digest(self, key_id: str, kind: str, scheme_name: str, message: bytes, is_digest: bool
                ) -> Tuple[SignatureScheme, bytes]:
        """The scheme, once it fits the key and the message's size, and the
        digest to sign (for SM2 the message as given: libcrypto hashes it)."""
        scheme = SIGNATURE_SCHEMES[scheme_name]
        if kind not in scheme.kinds:
            raise errors.InvalidKeyUsage(f"key {key_id} is a {kind} key; that signature algorithm needs "
                                         f"a {' or '.join(scheme.kinds)} key")
        algorithm = scheme.hash()
        if is_digest:
            if len(message) != algorithm.digest_size:
                raise errors.InvalidParameter(f"a DIGEST message must be the {algorithm.name} digest, "
                                              f"{algorithm.digest_size} bytes, not {len(message)}")
            return scheme, message
        if len(message) > MAX_MESSAGE:
            raise errors.InvalidParameter(f"a RAW message is at most {MAX_MESSAGE} bytes")
        if kind == "sm2":  # libcrypto hashes a RAW message itself, with Z in front
            return scheme, message
        return scheme, asymmetric.digest_of(algorithm, message)

    def sign(self, key_id: str, scheme_name: str, message: bytes, is_digest: bool) -> bytes:
        """A signature (ECDSA: DER SEQUENCE{r, s}; RSA: modulus-sized)."""
        _, kind, private = self._usable(key_id, "sign")
        scheme, digest = self._digest(key_id, kind, scheme_name, message, is_digest)
        if kind == "sm2":
            return bytes(private.sign_digest(message) if is_digest else private.sign(message))
        return asymmetric.sign_digest(private, digest, scheme.hash(), _rsa_signature_padding(scheme, True))

    def verify(self, key_id: str, scheme_name: str, message: bytes, is_digest: bool,
               signature: bytes) -> bool:
        """False for a signature that does not match, however malformed."""
        _, kind, private = self._usable(key_id, "sign")
        scheme, digest = self._digest(key_id, kind, scheme_name, message, is_digest)
        _check_signature_size(private, signature)
        if kind == "sm2":  # the private key's EVP_PKEY verifies too: no public key object per call
            return bool(private.verify_digest(signature, message) if is_digest else private.verify(signature, message))
        return asymmetric.verify_digest(private.public_key(), signature, digest, scheme.hash(),
                                        _rsa_signature_padding(scheme, False))

    def decrypt_sm2(self, key_id: str, ciphertext: bytes) -> bytes:
        """An SM2 ciphertext (GM/T 0009 ASN.1, or raw C1C3C2) of at most 256 bytes."""
        _, _, private = self._usable(key_id, "sm2")
        if len(ciphertext) > MAX_SM2_CIPHERTEXT:
            raise errors.InvalidParameter(f"an SM2 ciphertext is at most {MAX_SM2_CIPHERTEXT} bytes")
        try:
            return bytes(private.decrypt(ciphertext))
        except sm2.SM2Error:
            raise errors.AsymmetricDecryptFailed("the ciphertext does not decrypt with this key") from None

    def decrypt(self, key_id: str, padding_name: str, ciphertext: bytes) -> bytes:
        """padding_name: one of kms.keys.asymmetric.RSA_PADDINGS."""
        _, _, private = self._usable(key_id, "rsa")
        try:
            return bytes(private.decrypt(ciphertext, asymmetric.RSA_PADDINGS[padding_name]()))
        except ValueError:  # wrong size, wrong padding, another key's ciphertext
            raise errors.AsymmetricDecryptFailed("the ciphertext does not decrypt with this key "
                                                 "and algorithm") from None
