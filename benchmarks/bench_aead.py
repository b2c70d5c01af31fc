"""AES-GCM engine benchmarks: every backend beside cryptography's AESGCM
(OpenSSL, whose own VAES path is the bar), in one run.

    .venv/bin/python -m pytest benchmarks/bench_aead.py --benchmark-enable

References, per scenario:
- single calls: cryptography's AESGCM.encrypt/decrypt on the same input;
- batches: a Python loop over cryptography's AESGCM.encrypt with
  os.urandom(12) nonces (decrypt: a loop over AESGCM.decrypt), the code a
  user would otherwise write;
- "cryptography, no VAES": the same OpenSSL with VAES/VPCLMULQDQ masked
  (OPENSSL_ia32cap), the fair bar for the 128-bit AES-NI tier; measured in a
  subprocess of this run because OpenSSL reads the mask at start-up.
"""
import json
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from kms import aead

SIZES = {"64B": 64, "1KiB": 1024, "16KiB": 16384, "1MiB": 1 << 20}
BATCH_COUNTS = {64: 1000, 1024: 1000, 16384: 100, 1 << 20: 4}
IMPLS = ["cryptography"] + list(aead.available_backends())
KEY = bytes(range(32))
NONCE = bytes(12)
OPENSSL = OpenSSLAESGCM(KEY)


def _box(impl):
    return OPENSSL if impl == "cryptography" else aead.AESGCM(KEY, backend=impl)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("impl", IMPLS)
def test_single_encrypt(benchmark, record, impl, size):
    box, data = _box(impl), os.urandom(size)
    benchmark(box.encrypt, NONCE, data, None)
    record(benchmark, group=f"encrypt 1 x {size} B", impl=impl, reference="cryptography",
           items=1, nbytes=size)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("impl", IMPLS)
def test_single_decrypt(benchmark, record, impl, size):
    box = _box(impl)
    sealed = OPENSSL.encrypt(NONCE, os.urandom(size), None)
    benchmark(box.decrypt, NONCE, sealed, None)
    record(benchmark, group=f"decrypt 1 x {size} B", impl=impl, reference="cryptography",
           items=1, nbytes=size)


def _loop_encrypt(items):
    encrypt, urandom = OPENSSL.encrypt, os.urandom
    return [encrypt(urandom(12), item, None) for item in items]


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("impl", ["python loop"] + list(aead.available_backends()))
def test_batch_encrypt(benchmark, record, impl, size):
    count = BATCH_COUNTS[size]
    items = [os.urandom(size) for _ in range(count)]
    if impl == "python loop":
        benchmark(_loop_encrypt, items)
    else:
        benchmark(_box(impl).encrypt_batch, None, items)
    record(benchmark, group=f"encrypt batch {count} x {size} B", impl=impl,
           reference="python loop", items=count, nbytes=size)


@pytest.mark.parametrize("size", [64, 1024], ids=["64B", "1KiB"])
@pytest.mark.parametrize("impl", list(aead.available_backends()))
def test_batch_encrypt_as_list(benchmark, record, impl, size):
    """The batch plus turning every item into its own bytes object."""
    count = BATCH_COUNTS[size]
    items = [os.urandom(size) for _ in range(count)]
    box = _box(impl)
    benchmark(lambda: list(box.encrypt_batch(None, items)))
    record(benchmark, group=f"encrypt batch {count} x {size} B", impl=f"{impl} + list()",
           reference="python loop", items=count, nbytes=size)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("impl", ["python loop"] + list(aead.available_backends()))
def test_batch_decrypt(benchmark, record, impl, size):
    count = BATCH_COUNTS[size]
    nonces = [os.urandom(12) for _ in range(count)]
    sealed = [OPENSSL.encrypt(n, os.urandom(size), None) for n in nonces]
    if impl == "python loop":
        decrypt = OPENSSL.decrypt
        benchmark(lambda: [decrypt(n, c, None) for n, c in zip(nonces, sealed)])
    else:
        benchmark(_box(impl).decrypt_batch, nonces, sealed)
    record(benchmark, group=f"decrypt batch {count} x {size} B", impl=impl,
           reference="python loop", items=count, nbytes=size)


_NO_VAES_PROBE = r"""
import json, os, sys, timeit
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
box, nonce, out = AESGCM(bytes(range(32))), bytes(12), {}
for size in json.loads(sys.argv[1]):
    data = os.urandom(size)
    number = max(10, 2_000_000 // (size + 256))
    runs = [t / number for t in timeit.repeat(lambda: box.encrypt(nonce, data, None), number=number, repeat=15)]
    runs.sort()
    out[size] = (runs[0], runs[len(runs) // 2])
print(json.dumps(out))
"""


def test_openssl_without_vaes_reference(record):
    """OpenSSL's AES-NI (non-VAES) path: the bar for the aesni tier."""
    env = dict(os.environ, OPENSSL_ia32cap=":~0x60000000000")  # mask VAES, VPCLMULQDQ
    proc = subprocess.run([sys.executable, "-c", _NO_VAES_PROBE, json.dumps(list(SIZES.values()))],
                          env=env, capture_output=True, text=True, timeout=300, check=True)
    for size, times in json.loads(proc.stdout).items():
        record(tuple(times), group=f"encrypt 1 x {size} B", impl="cryptography, no VAES",
               reference="", items=1, nbytes=int(size))
