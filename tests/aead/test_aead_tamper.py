"""Any change to nonce, associated data, ciphertext or tag must be refused,
with InvalidTag and nothing else."""
import random

import pytest
from cryptography.exceptions import InvalidTag

from kms import aead


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.mark.parametrize("length", [0, 1, 16, 100, 300])
def test_every_bit_flip_is_refused(backend, length):
    rng = random.Random(length)
    key, nonce, ad = rng.randbytes(32), rng.randbytes(12), rng.randbytes(21)
    box = aead.AESGCM(key, backend=backend)
    sealed = box.encrypt(nonce, rng.randbytes(length), ad)
    for bit in range(8 * len(sealed)):  # every ciphertext and tag bit
        with pytest.raises(InvalidTag):
            box.decrypt(nonce, _flip(sealed, bit), ad)
    for bit in range(8 * len(nonce)):
        with pytest.raises(InvalidTag):
            box.decrypt(_flip(nonce, bit), sealed, ad)
    for bit in range(8 * len(ad)):
        with pytest.raises(InvalidTag):
            box.decrypt(nonce, sealed, _flip(ad, bit))


def test_missing_or_extra_associated_data_is_refused(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    nonce = bytes(12)
    sealed = box.encrypt(nonce, b"secret", b"ctx")
    for wrong in (None, b"", b"ctx\x00", b"ct"):
        with pytest.raises(InvalidTag):
            box.decrypt(nonce, sealed, wrong)


def test_wrong_key_is_refused(backend):
    nonce = bytes(12)
    sealed = aead.AESGCM(bytes(32), backend=backend).encrypt(nonce, b"secret", None)
    with pytest.raises(InvalidTag):
        aead.AESGCM(bytes(31) + b"\x01", backend=backend).decrypt(nonce, sealed, None)


@pytest.mark.parametrize("size", range(16))
def test_input_shorter_than_a_tag_is_invalid_tag(backend, size):
    box = aead.AESGCM(bytes(16), backend=backend)
    with pytest.raises(InvalidTag):
        box.decrypt(bytes(12), bytes(size), None)


def test_truncated_and_extended_ciphertexts_are_refused(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    nonce = bytes(12)
    sealed = box.encrypt(nonce, bytes(range(200)), None)
    for cut in (1, 15, 16, 17, 100):
        with pytest.raises(InvalidTag):
            box.decrypt(nonce, sealed[:-cut], None)
    for extra in (b"\x00", bytes(16)):
        with pytest.raises(InvalidTag):
            box.decrypt(nonce, sealed + extra, None)
