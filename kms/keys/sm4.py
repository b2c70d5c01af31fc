"""SM4-GCM (GB/T 32907 SM4 in GCM, RFC 8998), the AEAD of SM4 CMKs, in
`cryptography`'s AEAD shape. `cryptography` implements SM4 (through its
OpenSSL); only the 96-bit nonce and 16-byte tag the blob layout uses are
offered."""
from typing import Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16


class SM4GCM:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("SM4 keys are 16 bytes")
        self._key = bytes(key)

    def encrypt(self, nonce: bytes, data: bytes, aad: Optional[bytes]) -> bytes:
        """ciphertext || tag"""
        if len(nonce) != NONCE_SIZE:
            raise ValueError("SM4-GCM nonces are 12 bytes here")
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        if aad:
            encryptor.authenticate_additional_data(aad)
        return encryptor.update(data) + encryptor.finalize() + encryptor.tag

    def decrypt(self, nonce: bytes, data: bytes, aad: Optional[bytes]) -> bytes:
        if len(nonce) != NONCE_SIZE or len(data) < TAG_SIZE:
            raise InvalidTag()
        decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, data[-TAG_SIZE:])).decryptor()
        if aad:
            decryptor.authenticate_additional_data(aad)
        return decryptor.update(data[:-TAG_SIZE]) + decryptor.finalize()
