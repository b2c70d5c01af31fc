"""The Python API: cryptography-compatible semantics, argument errors,
backend selection and batch behaviour."""
import os
import subprocess
import sys
from array import array

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from kms import aead, errors


def test_backend_is_one_of_the_known_paths():
    assert aead.BACKEND in aead.BACKENDS
    # The best path here, unless KMS_AEAD_BACKEND forces one.
    assert aead.BACKEND == (os.environ.get("KMS_AEAD_BACKEND") or aead.available_backends()[0])
    assert "fallback" in aead.available_backends()


def test_instances_belong_to_their_backend(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    assert isinstance(box, aead.AESGCM)
    assert box.backend == backend


def test_none_associated_data_equals_empty(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    nonce = os.urandom(12)
    assert box.encrypt(nonce, b"data", None) == box.encrypt(nonce, b"data", b"")
    assert box.decrypt(nonce, box.encrypt(nonce, b"data", b""), None) == b"data"


def test_results_are_fresh_bytes(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    nonce = bytes(12)
    a = box.encrypt(nonce, b"x", None)
    b = box.encrypt(nonce, b"x", None)
    assert type(a) is bytes and a == b and a is not b
    p1, p2 = box.decrypt(nonce, a, None), box.decrypt(nonce, b, None)
    assert p1 == p2 == b"x" and p1 is not p2 and type(p1) is bytes
    assert box.decrypt(nonce, box.encrypt(nonce, b"", None), None) == b""


@pytest.mark.parametrize("size", [0, 8, 11, 13, 16, 64])
def test_nonce_other_than_96_bits_is_refused(backend, size):
    box = aead.AESGCM(bytes(32), backend=backend)
    with pytest.raises(errors.InvalidNonceSize, match="12 bytes"):
        box.encrypt(bytes(size), b"data", None)
    with pytest.raises(ValueError):  # also a ValueError, as in cryptography
        box.decrypt(bytes(size), bytes(32), None)


@pytest.mark.parametrize("size", [0, 15, 17, 24, 31, 33, 64])
def test_key_other_than_128_or_256_bits_is_refused(backend, size):
    with pytest.raises(errors.InvalidKeySize, match="128 or 256"):
        aead.AESGCM(bytes(size), backend=backend)


@pytest.mark.parametrize("tag_length", [4, 8, 12, 15, 17])
def test_tag_other_than_128_bits_is_refused(backend, tag_length):
    with pytest.raises(errors.InvalidTagSize, match="128-bit"):
        aead.AESGCM(bytes(32), backend=backend, tag_length=tag_length)


@pytest.mark.parametrize("bad", ["text", 12, None, [1, 2]])
def test_non_bytes_arguments_raise_type_error(backend, bad):
    box = aead.AESGCM(bytes(32), backend=backend)
    with pytest.raises(TypeError):
        box.encrypt(bytes(12), bad, None)
    with pytest.raises(TypeError):
        box.encrypt(bad if bad is not None else 1, b"data", None)
    if bad is not None:
        with pytest.raises(TypeError):
            box.encrypt(bytes(12), b"data", bad)
    with pytest.raises(TypeError):
        aead.AESGCM("k" * 32, backend=backend)


def test_bytearray_and_memoryview_are_accepted(backend):
    box = aead.AESGCM(bytearray(32), backend=backend)
    ref = OpenSSLAESGCM(bytes(32))
    nonce = bytes(range(12))
    sealed = box.encrypt(bytearray(nonce), memoryview(b"payload"), bytearray(b"ad"))
    assert sealed == ref.encrypt(nonce, b"payload", b"ad")
    assert box.decrypt(memoryview(nonce), bytearray(sealed), memoryview(b"ad")) == b"payload"


def test_unknown_backend_name_is_refused():
    with pytest.raises(errors.BackendUnavailable, match="not available"):
        aead.AESGCM(bytes(32), backend="quantum")


def test_generate_key():
    assert len(aead.AESGCM.generate_key(256)) == 32
    assert len(aead.AESGCM.generate_key(128)) == 16
    with pytest.raises(errors.InvalidKeySize):
        aead.AESGCM.generate_key(192)


def _import_in_subprocess(value):
    env = dict(os.environ, KMS_AEAD_BACKEND=value)
    return subprocess.run(
        [sys.executable, "-c", "from kms import aead; print(aead.BACKEND)"],
        env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("name", aead.available_backends())
def test_environment_variable_forces_a_backend(name):
    proc = _import_in_subprocess(name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == name


def test_environment_variable_auto_takes_the_best():
    proc = _import_in_subprocess("auto")
    assert proc.stdout.strip() == aead.available_backends()[0]


def test_environment_variable_with_unknown_name_fails_loudly():
    proc = _import_in_subprocess("turbo")
    assert proc.returncode != 0
    assert "KMS_AEAD_BACKEND='turbo' is not a backend" in proc.stderr


@pytest.mark.skipif("vaes" in aead.available_backends(), reason="this CPU offers VAES")
def test_environment_variable_naming_a_missing_tier_fails_loudly():
    proc = _import_in_subprocess("vaes")
    assert proc.returncode != 0
    assert "BackendUnavailable" in proc.stderr


# ---- batches ---------------------------------------------------------------


def test_empty_batch(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    sealed = box.encrypt_batch(None, [])
    assert len(sealed) == 0 and list(sealed) == [] and sealed.nonces == b""
    opened = box.decrypt_batch(b"", [])
    assert len(opened) == 0 and opened.ok


def test_batch_of_one(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    sealed = box.encrypt_batch(None, [b"only"])
    assert len(sealed) == 1 and len(sealed.nonce(0)) == 12
    assert box.decrypt(sealed.nonce(0), sealed[0], None) == b"only"
    assert list(box.decrypt_batch([sealed.nonce(0)], [sealed[0]])) == [b"only"]


def test_generated_nonces_are_distinct(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    sealed = box.encrypt_batch(None, [b""] * 5000)
    nonces = {sealed.nonce(i) for i in range(len(sealed))}
    assert len(nonces) == 5000
    again = box.encrypt_batch(None, [b""] * 5000)
    assert again.nonces != sealed.nonces


def test_one_corrupted_item_fails_alone(backend):
    box = aead.AESGCM(os.urandom(32), backend=backend)
    items = [os.urandom(n) for n in (10, 100, 1000, 0, 33)] * 20
    sealed = box.encrypt_batch(None, items, b"ad")
    cts = list(sealed)
    cts[37] = cts[37][:5] + bytes([cts[37][5] ^ 0x40]) + cts[37][6:]
    cts[51] = cts[51][:-1] + bytes([cts[51][-1] ^ 1])  # tag bit
    cts[60] = b"too short"
    opened = box.decrypt_batch(sealed.nonces, cts, b"ad")
    assert opened.failed == [37, 51, 60]
    assert not opened.ok
    for i, item in enumerate(items):
        assert opened[i] == (None if i in (37, 51, 60) else item)
    assert isinstance(opened.error(37), InvalidTag)
    assert isinstance(opened.error(60), InvalidTag)
    assert opened.error(0) is None
    # The failed item's plaintext slot holds zeros, never unverified bytes.
    assert bytes(opened.buffer[opened.offsets[37] : opened.offsets[38]]) == bytes(len(items[37]))


def test_per_item_associated_data_is_bound_to_its_item(backend):
    box = aead.AESGCM(os.urandom(32), backend=backend)
    items = [b"a", b"b", b"c"]
    sealed = box.encrypt_batch(None, items, [b"1", b"2", b"3"])
    opened = box.decrypt_batch(sealed.nonces, list(sealed), [b"1", b"X", b"3"])
    assert list(opened) == [b"a", None, b"c"]


def test_packed_inputs(backend):
    box = aead.AESGCM(os.urandom(32), backend=backend)
    items = [os.urandom(n) for n in (5, 0, 70)]
    packed = aead.Packed(b"".join(items), array("Q", map(len, items)))
    sealed = box.encrypt_batch(None, packed, aead.Packed(b"xyz", array("Q", [1, 0, 2])))
    opened = box.decrypt_batch(sealed.nonces, list(sealed), [b"x", b"", b"yz"])
    assert list(opened) == items
    with pytest.raises(errors.InvalidBuffer, match="add up"):
        box.encrypt_batch(None, aead.Packed(b"abc", array("Q", [1, 1])))
    with pytest.raises(TypeError):
        box.encrypt_batch(None, aead.Packed(b"abc", [3]))


def test_batch_argument_errors(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    with pytest.raises(errors.InvalidNonceSize):
        box.encrypt_batch(bytes(23), [b"a", b"b"])
    with pytest.raises(errors.InvalidNonceSize):
        box.encrypt_batch([bytes(12), bytes(11)], [b"a", b"b"])
    with pytest.raises(errors.InvalidBuffer, match="nonces"):
        box.decrypt_batch([bytes(12)], [b"a", b"b"])
    with pytest.raises(TypeError):
        box.encrypt_batch(None, b"one buffer is not a batch")
    with pytest.raises(TypeError):
        box.encrypt_batch(None, ["text"])
    with pytest.raises(errors.InvalidBuffer, match="associated data"):
        box.encrypt_batch(None, [b"a", b"b"], [b"only one"])
    with pytest.raises(errors.InvalidBuffer):
        box.encrypt_batch(None, [memoryview(array("I", [1, 2]))])


def test_batch_slicing_and_indexing(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    sealed = box.encrypt_batch(None, [b"a", b"bb", b"ccc"])
    assert sealed[-1] == sealed[2] and sealed[0:2] == [sealed[0], sealed[1]]
    with pytest.raises(IndexError):
        sealed[3]
    opened = box.decrypt_batch(sealed.nonces, list(sealed))
    assert opened[-1] == b"ccc" and opened[1:] == [b"bb", b"ccc"]


def test_large_batch(backend):
    box = aead.AESGCM(os.urandom(32), backend=backend)
    items = [os.urandom(i % 97) for i in range(20_000)]
    sealed = box.encrypt_batch(None, items)
    assert list(box.decrypt_batch(sealed.nonces, list(sealed))) == items


def test_wide_memoryviews_are_their_raw_bytes_in_single_calls(backend):
    box = aead.AESGCM(bytes(32), backend=backend)
    words = memoryview(array("I", [1, 2, 3]))
    raw = words.tobytes()
    assert box.encrypt(bytes(12), words, None) == OpenSSLAESGCM(bytes(32)).encrypt(bytes(12), raw, None)
    with pytest.raises(TypeError):
        box.encrypt(bytes(12), memoryview(b"abcdef")[::2], None)  # not contiguous


@pytest.mark.parametrize("size", [10, 70_000])
def test_large_and_small_batches_give_the_same_results(backend, size):
    """Large items take one call each; the results must not differ."""
    box = aead.AESGCM(os.urandom(32), backend=backend)
    items = [os.urandom(size), os.urandom(5), os.urandom(size)]
    nonces = [os.urandom(12) for _ in items]
    sealed = box.encrypt_batch(nonces, items, b"ad")
    assert list(sealed) == [box.encrypt(n, p, b"ad") for n, p in zip(nonces, items)]
    assert bytes(sealed.buffer) == b"".join(sealed)
    assert list(sealed.offsets) == [0, size + 16, size + 37, 2 * size + 53]
    cts = list(sealed)
    cts[1] = cts[1][:-1] + bytes([cts[1][-1] ^ 1])
    opened = box.decrypt_batch(nonces, cts, b"ad")
    assert opened.failed == [1] and opened[0] == items[0] and opened[2] == items[2]
    assert bytes(opened.buffer) == items[0] + bytes(5) + items[2]


@pytest.mark.parametrize("sizes", [[0, 5, 64, 1000], [70_000, 3]])
def test_nonce_prefix_layout(backend, sizes):
    """nonce_prefix=True: each item is nonce || ciphertext || tag."""
    key = os.urandom(32)
    box = aead.AESGCM(key, backend=backend)
    items = [os.urandom(n) for n in sizes]
    sealed = box.encrypt_batch(None, items, b"ad", nonce_prefix=True)
    for i, item in enumerate(items):
        body = bytes(sealed[i])
        assert len(body) == len(item) + 28 and body[:12] == sealed.nonce(i)
        assert OpenSSLAESGCM(key).decrypt(body[:12], body[12:], b"ad") == item
