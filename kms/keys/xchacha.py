"""XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): ChaCha20-Poly1305 with a
192-bit nonce, for transit's xchacha20-poly1305 keys. `cryptography` has no
XChaCha; libsodium does, through PyNaCl (maintained, and the reference
implementation of the construction). A random 24-byte nonce never repeats
in practice, which is why Vault offers the type."""
from typing import Optional

from nacl import bindings, exceptions

NONCE_SIZE = 24
KEY_SIZE = 32


class XChaCha20Poly1305:
    """The `cryptography` AEAD shape: encrypt(nonce, data, aad) / decrypt."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("XChaCha20-Poly1305 keys are 32 bytes")
        self._key = bytes(key)

    def encrypt(self, nonce: bytes, data: bytes, aad: Optional[bytes]) -> bytes:
        if len(nonce) != NONCE_SIZE:
            raise ValueError("XChaCha20-Poly1305 nonces are 24 bytes")
        return bytes(bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(data, aad, nonce, self._key))

    def decrypt(self, nonce: bytes, data: bytes, aad: Optional[bytes]) -> bytes:
        """cryptography's InvalidTag on any failure, as the other AEADs raise."""
        from cryptography.exceptions import InvalidTag

        if len(nonce) != NONCE_SIZE:
            raise InvalidTag()
        try:
            return bytes(bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(data, aad, nonce, self._key))
        except exceptions.CryptoError:
            raise InvalidTag() from None
