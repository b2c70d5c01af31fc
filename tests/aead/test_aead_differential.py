"""Differential tests against cryptography's AESGCM (OpenSSL): identical
ciphertext and tag bytes, and round trips, across lengths that hit every
tail and aggregate boundary of the native tiers: aesni (8-block chunks),
vaes256 (128-byte tails, 16-block chunks, 32 blocks per reduction, 1 KiB
switch to long chunks) and vaes (256-byte tails, 32-block chunks, 2 KiB
switch)."""
import os
import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from kms import aead

KEY_SIZES = (16, 32)


def _check(box, ref, nonce, data, ad):
    sealed = box.encrypt(nonce, data, ad)
    assert sealed == ref.encrypt(nonce, bytes(data), ad), (len(data), None if ad is None else len(ad))
    assert box.decrypt(nonce, sealed, ad) == bytes(data)


@pytest.mark.parametrize("key_size", KEY_SIZES)
def test_every_plaintext_length_up_to_600(backend, key_size):
    rng = random.Random(600 + key_size)
    key = rng.randbytes(key_size)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    for n in range(601):
        _check(box, ref, rng.randbytes(12), rng.randbytes(n), rng.randbytes(n % 81))


@pytest.mark.parametrize("key_size", KEY_SIZES)
def test_every_aad_length_up_to_80(backend, key_size):
    rng = random.Random(80 + key_size)
    key = rng.randbytes(key_size)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    for a in range(81):
        for n in (0, 1, 16, 63, 64, 255, 256, 257):
            _check(box, ref, rng.randbytes(12), rng.randbytes(n), rng.randbytes(a))


def test_long_associated_data(backend):
    rng = random.Random(7)
    key = rng.randbytes(32)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    for a in (127, 128, 129, 255, 256, 257, 4095, 4096, 65_537):
        _check(box, ref, rng.randbytes(12), rng.randbytes(a % 300), rng.randbytes(a))


def test_lengths_around_aggregate_multiples(backend):
    rng = random.Random(11)
    key = rng.randbytes(32)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    lengths = set()
    for base in range(128, 8193, 128):  # 8- and 16-block chunks, 512-byte and 2 KiB switches
        for delta in (-16, -15, -1, 0, 1, 15, 16):
            lengths.add(base + delta)
    for n in sorted(lengths):
        _check(box, ref, rng.randbytes(12), rng.randbytes(n), b"aad")


def test_random_lengths_up_to_one_mebibyte(backend):
    rng = random.Random(1 << 20)
    key = rng.randbytes(32)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    sizes = [rng.randrange(1 << 20) for _ in range(12)] + [65_536, 1 << 20]
    for n in sizes:
        _check(box, ref, rng.randbytes(12), os.urandom(n), rng.randbytes(rng.randrange(40)))


def test_misaligned_buffers(backend):
    """Inputs and outputs that start at every offset 0..63 of a larger buffer."""
    rng = random.Random(63)
    key = rng.randbytes(32)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    nonce = rng.randbytes(12)
    for offset in range(64):
        for n in (1, 33, 300):
            backing = bytearray(rng.randbytes(offset + n + 16 + 64))
            data = memoryview(backing)[offset : offset + n]
            ad = memoryview(backing)[offset + 1 : offset + 1 + (offset % 20)]
            sealed = box.encrypt(memoryview(bytearray(b"x" * offset + nonce))[offset:], data, ad)
            assert sealed == ref.encrypt(nonce, bytes(data), bytes(ad))
            ct_backing = bytearray(offset) + bytearray(sealed)
            assert box.decrypt(nonce, memoryview(ct_backing)[offset:], ad) == bytes(data)


@pytest.mark.parametrize("key_size", KEY_SIZES)
def test_batches_of_mixed_lengths_match_single_calls(backend, key_size):
    rng = random.Random(99 + key_size)
    key = rng.randbytes(key_size)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    items = [rng.randbytes(rng.choice([0, 1, 15, 16, 17, 64, 200, 255, 256, 257, 1000, 5000]))
             for _ in range(300)]
    nonces = [rng.randbytes(12) for _ in items]
    ads = [rng.randbytes(rng.randrange(50)) for _ in items]
    sealed = box.encrypt_batch(nonces, items, ads)
    assert list(sealed) == [ref.encrypt(n, p, a) for n, p, a in zip(nonces, items, ads)]
    assert list(sealed) == [box.encrypt(n, p, a) for n, p, a in zip(nonces, items, ads)]
    opened = box.decrypt_batch(b"".join(nonces), list(sealed), ads)
    assert opened.ok and list(opened) == items


def test_batch_with_shared_aad_matches_single_calls(backend):
    rng = random.Random(5)
    key = rng.randbytes(32)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    items = [rng.randbytes(rng.randrange(3000)) for _ in range(100)]
    sealed = box.encrypt_batch(None, items, b"shared context")
    for i, ct in enumerate(sealed):
        assert ref.decrypt(sealed.nonce(i), ct, b"shared context") == items[i]
    assert list(box.decrypt_batch(sealed.nonces, list(sealed), b"shared context")) == items


@pytest.mark.parametrize("key_size", KEY_SIZES)
def test_small_item_batches_of_every_shape(backend, key_size):
    """Items of 0..80 bytes (the engine groups items of up to 64 bytes into
    shared AES passes) in batches of 1..9, so every group remainder occurs,
    with per-item AAD; one corrupted item per batch fails alone."""
    rng = random.Random(4 * key_size)
    key = rng.randbytes(key_size)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    lengths = list(range(81))
    for batch_size in range(1, 10):
        for start in range(0, len(lengths), batch_size):
            items = [rng.randbytes(n) for n in lengths[start : start + batch_size]]
            nonces = [rng.randbytes(12) for _ in items]
            ads = [rng.randbytes(rng.randrange(70)) for _ in items]
            sealed = box.encrypt_batch(nonces, items, ads)
            assert list(sealed) == [ref.encrypt(n, p, a) for n, p, a in zip(nonces, items, ads)]
            cts = list(sealed)
            bad = rng.randrange(len(cts))
            cts[bad] = cts[bad][:-1] + bytes([cts[bad][-1] ^ 0x80])
            opened = box.decrypt_batch(nonces, cts, ads)
            assert opened.failed == [bad]
            assert [p for i, p in enumerate(opened) if i != bad] == [p for i, p in enumerate(items) if i != bad]


def test_aad_lengths_across_the_wide_tiers_boundaries(backend):
    """AAD is hashed in whole chunks (256 bytes on vaes256, 512 on vaes) and
    then in shorter runs; every length around those multiples, with texts
    on either side of each tier's chunk sizes."""
    rng = random.Random(256)
    key = rng.randbytes(32)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    aad_lengths = sorted({base + d for base in range(128, 1537, 128) for d in (-17, -16, -1, 0, 1, 15, 16)})
    for a in aad_lengths:
        for n in (0, 17, 128, 600, 1024):
            _check(box, ref, rng.randbytes(12), rng.randbytes(n), rng.randbytes(a))


@pytest.mark.parametrize("key_size", KEY_SIZES)
def test_multi_mebibyte_messages(backend, key_size):
    """Long runs of chunk pairs and the counter's low byte wrapping many
    times over, with an odd tail."""
    rng = random.Random(3 << 20)
    key = rng.randbytes(key_size)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    for n in ((3 << 20) + 17, (4 << 20) - 256, 5 << 20):
        _check(box, ref, rng.randbytes(12), os.urandom(n), rng.randbytes(13))


def test_lengths_around_the_wide_tiers_chunk_pairs(backend):
    """Every length from 480 to 4200 bytes in 16-byte steps, each with 0, 1
    and 15 more: all counts of 256-byte chunks and 512-byte chunk pairs,
    both encrypt paths (below and above 1 and 2 KiB) and every tail."""
    rng = random.Random(512)
    key = rng.randbytes(16)
    box, ref = aead.AESGCM(key, backend=backend), OpenSSLAESGCM(key)
    for base in range(480, 4201, 16):
        for extra in (0, 1, 15):
            _check(box, ref, rng.randbytes(12), rng.randbytes(base + extra), b"")
