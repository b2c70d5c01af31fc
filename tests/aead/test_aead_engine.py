"""The C engine through its own entry points: status codes, limits,
in-place and overlapping buffers, the constant-time compare, wiping."""
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from kms import aead, errors
from kms.aead import status as S

native = pytest.importorskip("kms._native._aead", reason="the native extension is not built")
ffi, lib = native.ffi, native.lib


def test_python_constants_agree_with_the_engine():
    assert lib.kms_aead_nonce_bytes() == S.NONCE_SIZE
    assert lib.kms_aead_tag_bytes() == S.TAG_SIZE
    assert lib.kms_aead_max_plaintext_bytes() == S.MAX_PLAINTEXT == 2**36 - 32
    assert lib.kms_aead_max_aad_bytes() == S.MAX_AAD
    for status in S.Status:
        assert getattr(lib, "KMS_AEAD_" + status.name) == status.value


def test_tier_names():
    assert ffi.string(lib.kms_aead_tier_name(lib.KMS_AEAD_TIER_VAES)) == b"vaes"
    assert ffi.string(lib.kms_aead_tier_name(lib.KMS_AEAD_TIER_VAES256)) == b"vaes256"
    assert ffi.string(lib.kms_aead_tier_name(lib.KMS_AEAD_TIER_AESNI)) == b"aesni"
    assert ffi.string(lib.kms_aead_tier_name(lib.KMS_AEAD_TIER_NONE)) == b"none"


def test_tiers_are_ordered_and_each_backend_binds_its_own():
    """A CPU that runs a tier runs every lower one (kms_gcm_new and
    kms.aead rely on it): none < aesni < vaes256 < vaes."""
    assert (lib.KMS_AEAD_TIER_NONE < lib.KMS_AEAD_TIER_AESNI < lib.KMS_AEAD_TIER_VAES256
            < lib.KMS_AEAD_TIER_VAES)
    for name in aead.available_backends():
        if name != "fallback":
            tier = type(aead.AESGCM(bytes(16), backend=name)).tier
            assert ffi.string(lib.kms_aead_tier_name(tier)).decode() == name
            assert tier <= lib.kms_aead_best_tier()


@pytest.mark.parametrize(
    "nonce_len, tag_len, aad_len, pt_len, expected",
    [
        (12, 16, 0, 0, S.Status.OK),
        (12, 16, 2**61 - 1, 2**36 - 32, S.Status.OK),
        (12, 16, 0, 2**36 - 31, S.Status.ERR_TOO_LONG),  # one byte past 2^32 - 2 blocks
        (12, 16, 2**61, 0, S.Status.ERR_TOO_LONG),
        (12, 16, 2**64 - 1, 2**64 - 1, S.Status.ERR_TOO_LONG),
        (0, 16, 0, 0, S.Status.ERR_NONCE_SIZE),
        (16, 16, 0, 0, S.Status.ERR_NONCE_SIZE),
        (12, 12, 0, 0, S.Status.ERR_TAG_SIZE),
        (12, 4, 0, 0, S.Status.ERR_TAG_SIZE),
    ],
)
def test_parameter_limits(nonce_len, tag_len, aad_len, pt_len, expected):
    assert lib.kms_gcm_check_params(nonce_len, tag_len, aad_len, pt_len) == expected


def test_constant_time_compare():
    a = os.urandom(16)
    assert lib.kms_aead_ct_equal(a, a, 16) == 1
    for i in range(16):
        for bit in range(8):
            b = bytearray(a)
            b[i] ^= 1 << bit
            assert lib.kms_aead_ct_equal(a, bytes(b), 16) == 0
    assert lib.kms_aead_ct_equal(a, os.urandom(16), 0) == 1


def _ctx(native_backend, key):
    tier = type(aead.AESGCM(key, backend=native_backend)).tier
    st = ffi.new("int *")
    ctx = lib.kms_gcm_new(key, len(key), tier, st)
    assert st[0] == 0
    return ffi.gc(ctx, lib.kms_gcm_free)


def test_context_refuses_bad_keys_and_unavailable_tiers():
    st = ffi.new("int *")
    assert lib.kms_gcm_new(bytes(24), 24, lib.KMS_AEAD_TIER_AESNI, st) == ffi.NULL
    assert st[0] == S.Status.ERR_KEY_SIZE
    assert lib.kms_gcm_new(bytes(32), 32, lib.kms_aead_best_tier() + 1, st) == ffi.NULL
    assert st[0] == S.Status.ERR_BACKEND
    assert lib.kms_gcm_new(bytes(32), 32, lib.KMS_AEAD_TIER_NONE, st) == ffi.NULL
    assert st[0] == S.Status.ERR_BACKEND
    assert lib.kms_gcm_new(ffi.NULL, 32, lib.KMS_AEAD_TIER_AESNI, st) == ffi.NULL
    assert st[0] == S.Status.ERR_NULL


@pytest.mark.parametrize("n", [0, 1, 16, 100, 255, 256, 257, 4096])
def test_in_place_seal_and_open(native_backend, n):
    key, nonce, ad = os.urandom(32), os.urandom(12), os.urandom(9)
    ctx = _ctx(native_backend, key)
    data = os.urandom(n)
    buf = bytearray(data) + bytearray(16)
    p = ffi.from_buffer(buf)
    assert lib.kms_gcm_seal(ctx, nonce, ad, len(ad), p, n, p) == 0
    assert bytes(buf) == OpenSSLAESGCM(key).encrypt(nonce, data, ad)
    assert lib.kms_gcm_open(ctx, nonce, ad, len(ad), p, n + 16, p) == 0
    assert bytes(buf[:n]) == data


def test_partial_overlap_is_refused(native_backend):
    ctx = _ctx(native_backend, bytes(32))
    buf = bytearray(200)
    p = ffi.from_buffer(buf)
    assert lib.kms_gcm_seal(ctx, bytes(12), ffi.NULL, 0, p, 100, p + 1) == S.Status.ERR_OVERLAP
    assert lib.kms_gcm_seal(ctx, bytes(12), ffi.NULL, 0, p + 50, 100, p) == S.Status.ERR_OVERLAP
    assert lib.kms_gcm_open(ctx, bytes(12), ffi.NULL, 0, p, 116, p + 16) == S.Status.ERR_OVERLAP
    # Disjoint parts of one buffer are fine.
    assert lib.kms_gcm_seal(ctx, bytes(12), ffi.NULL, 0, p, 50, p + 60) == 0


def test_nulls_and_limits_are_refused(native_backend):
    ctx = _ctx(native_backend, bytes(32))
    out = bytearray(64)
    o = ffi.from_buffer(out)
    assert lib.kms_gcm_seal(ctx, ffi.NULL, ffi.NULL, 0, bytes(10), 10, o) == S.Status.ERR_NULL
    assert lib.kms_gcm_seal(ctx, bytes(12), ffi.NULL, 5, bytes(10), 10, o) == S.Status.ERR_NULL
    assert lib.kms_gcm_seal(ctx, bytes(12), ffi.NULL, 0, ffi.NULL, 10, o) == S.Status.ERR_NULL
    assert lib.kms_gcm_seal(ctx, bytes(12), ffi.NULL, 0, bytes(10), 10, ffi.NULL) == S.Status.ERR_NULL
    assert lib.kms_gcm_seal(ffi.NULL, bytes(12), ffi.NULL, 0, bytes(10), 10, o) == S.Status.ERR_NULL
    assert lib.kms_gcm_seal(ctx, bytes(12), ffi.NULL, 0, bytes(10), 2**36, o) == S.Status.ERR_TOO_LONG
    assert lib.kms_gcm_open(ctx, bytes(12), ffi.NULL, 0, bytes(15), 15, o) == S.Status.ERR_TOO_SHORT
    assert lib.kms_gcm_open(ctx, bytes(12), ffi.NULL, 0, bytes(20), 20, ffi.NULL) == S.Status.ERR_NULL


def test_failed_open_zeroes_the_output(native_backend):
    key, nonce = os.urandom(32), os.urandom(12)
    ctx = _ctx(native_backend, key)
    data = os.urandom(300)
    sealed = bytearray(OpenSSLAESGCM(key).encrypt(nonce, data, None))
    sealed[-1] ^= 1
    out = bytearray(b"\xaa" * 300)
    st = lib.kms_gcm_open(ctx, nonce, ffi.NULL, 0, bytes(sealed), len(sealed), ffi.from_buffer(out))
    assert st == S.Status.ERR_AUTH
    assert out == bytearray(300)


def _batch(count, aad, aad_total, aad_lens, items, items_total, item_lens, out, out_len, offsets, status):
    """A kms_batch (kms_aead.h); the buffers it points at stay referenced by
    the caller (the struct keeps the cdata it was given alive too)."""
    keep = [ffi.from_buffer(b) if isinstance(b, (bytes, bytearray)) else b for b in (aad, items)]
    batch = ffi.new("kms_batch *", {"count": count, "aad": keep[0], "aad_total": aad_total,
                                    "aad_lens": aad_lens, "items": keep[1], "items_total": items_total,
                                    "item_lens": item_lens, "out": out, "out_len": out_len,
                                    "out_offsets": offsets, "status": status})
    _KEPT.append(keep)
    return batch


_KEPT = []


def test_batch_call_level_errors(native_backend):
    ctx = _ctx(native_backend, bytes(32))
    lens = ffi.new("uint64_t[]", [3, 4])
    offsets = ffi.new("uint64_t[]", 3)
    status = ffi.new("int32_t[]", 2)
    out = ffi.new("uint8_t[]", 39)
    nonces = bytes(24)
    ok = lib.kms_gcm_seal_batch(ctx, _batch(2, ffi.NULL, 0, ffi.NULL, bytes(7), 7, lens, out, 39, offsets, status), nonces, 24, 0)
    assert ok == 0 and list(offsets) == [0, 19, 39]
    # Lengths not adding up, wrong nonce buffer, wrong output size, aliasing.
    assert lib.kms_gcm_seal_batch(ctx, _batch(2, ffi.NULL, 0, ffi.NULL, bytes(8), 8, lens, out, 40, offsets, status), nonces, 24, 0) == S.Status.ERR_BUFFER
    assert lib.kms_gcm_seal_batch(ctx, _batch(2, ffi.NULL, 0, ffi.NULL, bytes(7), 7, lens, out, 39, offsets, status), nonces, 12, 0) == S.Status.ERR_BUFFER
    assert lib.kms_gcm_seal_batch(ctx, _batch(2, ffi.NULL, 0, ffi.NULL, bytes(7), 7, lens, out, 38, offsets, status), nonces, 24, 0) == S.Status.ERR_BUFFER
    assert lib.kms_gcm_seal_batch(ctx, _batch(2, ffi.NULL, 0, ffi.NULL, bytes(7), 7, lens, out, 39, offsets, status), ffi.cast("uint8_t *", out), 24, 0) == S.Status.ERR_OVERLAP
    huge = ffi.new("uint64_t[]", [2**64 - 1, 2])
    assert lib.kms_gcm_seal_batch(ctx, _batch(2, ffi.NULL, 0, ffi.NULL, bytes(7), 7, huge, out, 39, offsets, status), nonces, 24, 0) == S.Status.ERR_BUFFER
    assert lib.kms_gcm_open_batch(ctx, _batch(2, ffi.NULL, 0, ffi.NULL, bytes(7), 7, lens, out, 39, ffi.NULL, status), nonces, 24) == S.Status.ERR_NULL


def test_batch_generates_nonces_in_the_engine(native_backend):
    ctx = _ctx(native_backend, bytes(32))
    count = 1000
    nonces = bytearray(12 * count)
    lens = ffi.new("uint64_t[]", [0] * count)
    offsets = ffi.new("uint64_t[]", count + 1)
    status = ffi.new("int32_t[]", count)
    out = ffi.new("uint8_t[]", 16 * count)
    assert lib.kms_gcm_seal_batch(ctx, _batch(count, ffi.NULL, 0, ffi.NULL, ffi.NULL, 0, lens, out, 16 * count, offsets, status), ffi.from_buffer(nonces), len(nonces), 1) == 0
    chunks = {bytes(nonces[i : i + 12]) for i in range(0, len(nonces), 12)}
    assert len(chunks) == count


def test_released_arena_is_wiped_and_reused():
    lib.kms_arena_trim()  # an empty pool: the next release is cached
    size = 1 << 20
    p = lib.kms_arena_new(size)
    assert p != ffi.NULL and int(ffi.cast("uintptr_t", p)) % 64 == 0
    ffi.buffer(p, size)[:] = b"\x5a" * size
    address = int(ffi.cast("uintptr_t", p))
    lib.kms_arena_release(p, size, 1)
    q = lib.kms_arena_new(size)
    assert int(ffi.cast("uintptr_t", q)) == address
    assert ffi.buffer(q, size)[:] == bytes(size)
    lib.kms_arena_release(q, size, 0)
    lib.kms_arena_trim()


def test_decrypt_batch_leaves_no_stale_bytes_after_the_items(native_backend):
    box = aead.AESGCM(bytes(32), backend=native_backend)
    sealed = box.encrypt_batch(None, [b"abc", b"defg"])
    opened = box.decrypt_batch(sealed.nonces + bytes(12), list(sealed) + [b"short"])
    buf = bytes(opened.buffer)
    assert buf[: opened.offsets[-1]] == b"abcdefg"
    assert buf[opened.offsets[-1] :] == bytes(len(buf) - opened.offsets[-1])


def test_library_errors_map_to_the_hierarchy():
    assert isinstance(S.error_for(S.Status.ERR_NONCE_SIZE), errors.InvalidNonceSize)
    assert isinstance(S.error_for(S.Status.ERR_TOO_LONG), OverflowError)
    assert isinstance(S.error_for(-99), errors.NativeError)
    assert isinstance(S.error_for(S.Status.ERR_BACKEND), errors.KMSError)
