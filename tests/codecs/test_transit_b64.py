"""kms.codecs.transit_b64: base64 text in, transit ciphertext text out (and
back), on every backend, with identical validity rules and error offsets."""
import base64
import os
import pathlib
import random
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from kms import aead
from kms.codecs import b64text, transit_b64

TRICKY = ["", "YQ==", "YWI=", "YWJj", "YR==", "YWJ=", "YWJj=", "YW", "Y", "====", "YW==YWJj",
          "YWJjZA=x", "Y W=", "!!!!", "YWJj\n", "YWJjZA==", "YWJjZGU=", "-_-_", "YQ=="[:3],
          "é" * 4, "AAAA" * 300 + "A==="]


def test_every_backend_agrees(backend):
    key = os.urandom(32)
    reference = transit_b64.seal_texts(aead.AESGCM(key, backend="fallback"), TRICKY, 1)
    box = aead.AESGCM(key, backend=backend)
    result = transit_b64.seal_texts(box, TRICKY, 7)
    assert len(result) == len(TRICKY)
    for i, text in enumerate(TRICKY):
        assert (result.item(i) is None) == (reference.item(i) is None), text
        if result.item(i) is None:
            assert result.bad_at[i] == reference.bad_at[i], text
            continue
        ct = bytes(result.item(i))
        assert ct.startswith(b"vault:v7:")
        body = base64.b64decode(ct[len(b"vault:v7:"):])
        assert OpenSSLAESGCM(key).decrypt(body[:12], body[12:], None) == base64.b64decode(text)


def test_random_valid_texts_round_trip(backend):
    rng = random.Random(3)
    key = os.urandom(16)
    plaintexts = [rng.randbytes(rng.randrange(2000)) for _ in range(300)]
    texts = [base64.b64encode(p).decode() for p in plaintexts]
    result = transit_b64.seal_texts(aead.AESGCM(key, backend=backend), texts, 12)
    for i, p in enumerate(plaintexts):
        body = base64.b64decode(bytes(result.item(i))[len(b"vault:v12:"):])
        assert OpenSSLAESGCM(key).decrypt(body[:12], body[12:], None) == p


def test_python_decoders_agree_with_the_regex_rules():
    """kms.b64text takes binascii's strict mode where Python has it (3.11+),
    with two checks of its own; it must accept and refuse exactly what the
    regex of Go's rules does, on many short texts over a tricky alphabet."""
    rng = random.Random(11)
    alphabet = "AB+/=\n -aé\r"
    texts = TRICKY + ["".join(rng.choice(alphabet) for _ in range(rng.randrange(14)))
                      for _ in range(100_000)]
    for text in texts:
        assert b64text.decode(text) == b64text._decode_regex(text), repr(text)
        assert (b64text.decode(text) is None) == (b64text.first_bad(text) >= 0), repr(text)


def test_one_item_seal_matches_the_batch_rules(backend):
    key = os.urandom(32)
    box = aead.AESGCM(key, backend=backend)
    reference = transit_b64.seal_texts(aead.AESGCM(key, backend="fallback"), TRICKY, 3)
    for i, text in enumerate(TRICKY):
        ct, bad_at = transit_b64.seal_one(box, text, 3)
        if reference.item(i) is None:
            assert (ct, bad_at) == (None, reference.bad_at[i]), text
            continue
        assert bad_at == 0 and ct.startswith(b"vault:v3:")
        body = base64.b64decode(ct[len(b"vault:v3:"):])
        assert OpenSSLAESGCM(key).decrypt(body[:12], body[12:], None) == base64.b64decode(text)


def test_one_item_open_against_openssl(backend):
    """open_one takes the base64 body of a transit ciphertext sealed by
    OpenSSL and returns the plaintext's base64; anything wrong gives None."""
    rng = random.Random(8)
    key = os.urandom(32)
    box = aead.AESGCM(key, backend=backend)
    for size in (0, 1, 15, 16, 17, 1024, 3000, 70_000):
        plain, aad, nonce = rng.randbytes(size), rng.randbytes(size % 40), os.urandom(12)
        body = base64.b64encode(nonce + OpenSSLAESGCM(key).encrypt(nonce, plain, aad or None))
        assert transit_b64.open_one(box, body, aad) == base64.b64encode(plain), size
        assert transit_b64.open_one(box, body, aad + b"x") is None
        tampered = bytearray(base64.b64decode(body))
        tampered[rng.randrange(len(tampered))] ^= 1 << rng.randrange(8)
        assert transit_b64.open_one(box, base64.b64encode(bytes(tampered)), aad) is None
    short = base64.b64encode(os.urandom(27))
    assert transit_b64.open_one(box, short, None) is None
    for bad in (b"!!!!", b"YWJj=", b"YW", b"AAAA====", b"", b"YWJj\n"):
        assert transit_b64.open_one(box, bad, None) is None, bad


def test_long_texts_with_a_bad_character_anywhere(backend):
    """On a CPU with AVX2 every native tier decodes and encodes 32
    characters at a time in registers (csrc/b64_avx2.c), elsewhere one
    quantum at a time (test_the_scalar_base64_passes_the_same_tests runs
    that here): each must name the same first bad character as the Python
    decoder, wherever it falls relative to those blocks, and round-trip
    every length."""
    rng = random.Random(17)
    key = os.urandom(32)
    reference = aead.AESGCM(key, backend="fallback")
    box = aead.AESGCM(key, backend=backend)
    for _ in range(400):
        plain = rng.randbytes(rng.randrange(0, 400))
        text = base64.b64encode(plain).decode()
        if text and rng.random() < 0.6:
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice("=!-_ .:@[`{") + text[at + 1:]
        ct, bad_at = transit_b64.seal_one(box, text, 2)
        ref_ct, ref_bad = transit_b64.seal_one(reference, text, 2)
        assert (ct is None, bad_at) == (ref_ct is None, ref_bad), text
        if ct is not None:
            body = ct[len(b"vault:v2:"):]
            raw = base64.b64decode(body)
            assert OpenSSLAESGCM(key).decrypt(raw[:12], raw[12:], None) == base64.b64decode(text)
            assert transit_b64.open_one(box, body, None) == base64.b64encode(base64.b64decode(text))


@pytest.mark.skipif("KMS_AEAD_CPU_HIDE" in os.environ, reason="already the run with features hidden")
@pytest.mark.skipif("aesni" not in aead.available_backends(), reason="no native engine on this machine")
def test_the_scalar_base64_passes_the_same_tests():
    """The engine's base64 follows the CPU's AVX2, not the key's tier, so on
    this machine every tier takes the AVX2 code; with AVX2 hidden from the
    probe the scalar code serves them all. This file's other tests, and the
    JSON and bulk ones, must pass on it too."""
    here = pathlib.Path(__file__).parent
    # Without AVX2 only aesni is left: a tier forced for the whole run is not.
    env = {**{k: v for k, v in os.environ.items() if k != "KMS_AEAD_BACKEND"}, "KMS_AEAD_CPU_HIDE": "avx2"}
    check = subprocess.run([sys.executable, "-c", "from kms._native import lib; print(lib.kms_aead_best_tier())"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert check.stdout.strip() == "1", check.stderr  # only aesni: the probe saw no AVX2
    files = [str(here / name) for name in ("test_transit_b64.py", "test_json_batch.py",
                                           "test_bulk_request.py", "test_open_readers.py",
                                           "test_bulk_framing.py")]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout
