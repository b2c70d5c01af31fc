"""The dispatcher trusts CPUID and XGETBV, not the build host.

Under Valgrind, whose virtual CPU reports no AVX-512 and no VAES, the engine
must pick the AES-NI tier and still compute correct results, never die with
SIGILL (spec/aesni-gcm-notes.md, section 5.2). KMS_AEAD_CPU_HIDE makes the
probe treat features as absent, so this machine also makes the choices of
CPUs without AVX-512 (the 256-bit VAES tier), without VAES, and without AVX2;
KMS_AEAD_BACKEND=vaes256 runs the 256-bit code, which holds no AVX-512
instruction at all."""
import base64
import os
import re
import shutil
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from kms import aead

PROBE = """
import base64
from kms import aead
box = aead.AESGCM(bytes(range(32)))
print(aead.BACKEND)
print(box.encrypt(bytes(12), bytes(1000), b"ad").hex())
print(list(box.decrypt_batch([bytes(12)], [box.encrypt(bytes(12), b"x", None)])))
from kms.codecs import transit_b64
print(transit_b64.open_one(box, base64.b64encode(bytes(12) + box.encrypt(bytes(12), bytes(300), None)), None).decode())
"""

# What each run reports: the backends it offers, the one it picked, the
# engine's own name for the tier of that backend's key context, and
# ciphertexts of lengths around the 256-bit tier's chunks (128-byte tail
# limit, 256-byte chunks, 512-byte reduction pairs, the 1 KiB switch).
CHOICE = """
import json, os
from kms import aead
out = {"available": list(aead.available_backends()), "backend": aead.BACKEND}
if aead.BACKEND != "fallback":
    from kms._native import ffi, lib
    box = aead.AESGCM(bytes(range(32)))
    out["ctx_tier"] = ffi.string(lib.kms_aead_tier_name(lib.kms_gcm_tier(box._ctx))).decode()
    out["sealed"] = {n: box.encrypt(bytes(12), bytes(range(256)) * (n // 256) + bytes(n % 256), b"ad").hex()
                     for n in (0, 15, 127, 128, 129, 255, 256, 511, 512, 1023, 1024, 4096 + 17)}
print(json.dumps(out))
"""

HAS_VAES256 = "vaes256" in aead.available_backends()
def _outer_environment():
    """This process's environment without a forced backend: each probe
    names what it forces, so the suite run with a tier forced (as CI runs
    every tier) still sees the choice the probe asks about."""
    return {k: v for k, v in os.environ.items() if k != "KMS_AEAD_BACKEND"}


ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")


def _run(code, **env):
    proc = subprocess.run([sys.executable, "-c", code], env={**_outer_environment(), **env},
                          capture_output=True, text=True, timeout=120)
    return proc


def _choice(**env):
    import json

    proc = _run(CHOICE, **env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _check_sealed(result):
    ref = OpenSSLAESGCM(bytes(range(32)))
    for n, hexed in result["sealed"].items():
        n = int(n)
        data = bytes(range(256)) * (n // 256) + bytes(n % 256)
        assert bytes.fromhex(hexed) == ref.encrypt(bytes(12), data, b"ad"), n


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif(ASAN, reason="the AddressSanitizer build cannot run under Valgrind")
@pytest.mark.skipif("aesni" not in aead.available_backends(), reason="no native engine on this machine")
def test_engine_falls_back_to_aesni_when_the_cpu_hides_vaes():
    # --tool=none: no memory checking, just Valgrind's virtual CPU. It still
    # reports AVX2, so the AES-NI tier's base64 runs in AVX2 registers.
    proc = subprocess.run(["valgrind", "--tool=none", "-q", sys.executable, "-c", PROBE],
                          env=_outer_environment(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    backend, sealed, opened, b64 = proc.stdout.split("\n")[:4]
    assert backend == "aesni"
    assert bytes.fromhex(sealed) == OpenSSLAESGCM(bytes(range(32))).encrypt(bytes(12), bytes(1000), b"ad")
    assert opened == "[b'x']"
    assert b64 == base64.b64encode(bytes(300)).decode()


@pytest.mark.skipif(not HAS_VAES256, reason="this CPU has no VAES + AVX2")
def test_forcing_vaes256_runs_the_256_bit_tier():
    result = _choice(KMS_AEAD_BACKEND="vaes256")
    assert result["backend"] == "vaes256"
    assert result["ctx_tier"] == "vaes256"
    _check_sealed(result)


@pytest.mark.skipif(not HAS_VAES256, reason="this CPU has no VAES + AVX2")
def test_a_cpu_without_avx512_gets_the_256_bit_tier():
    result = _choice(KMS_AEAD_CPU_HIDE="avx512")
    assert result["available"] == ["vaes256", "aesni", "fallback"]
    assert result["backend"] == result["ctx_tier"] == "vaes256"
    _check_sealed(result)
    # Asking for the 512-bit tier there fails loudly, not quietly slower.
    proc = _run("from kms import aead", KMS_AEAD_CPU_HIDE="avx512", KMS_AEAD_BACKEND="vaes")
    assert proc.returncode != 0
    assert "BackendUnavailable" in proc.stderr and "available here: vaes256, aesni" in proc.stderr


@pytest.mark.skipif(not HAS_VAES256, reason="this CPU has no VAES + AVX2")
@pytest.mark.parametrize("hidden", ["vaes", "avx2", "avx512,vaes", "avx512,avx2"])
def test_a_cpu_without_vaes_or_avx2_gets_the_aesni_tier(hidden):
    result = _choice(KMS_AEAD_CPU_HIDE=hidden)
    assert result["available"] == ["aesni", "fallback"]
    assert result["backend"] == result["ctx_tier"] == "aesni"
    _check_sealed(result)


@pytest.mark.skipif("vaes" not in aead.available_backends(), reason="this CPU has no usable AVX-512")
@pytest.mark.parametrize("hidden", ["", "avx", "avx512x", ",", "vaes256"])
def test_the_hide_list_takes_whole_words_only(hidden):
    assert _choice(KMS_AEAD_CPU_HIDE=hidden)["backend"] == "vaes"


def _tier_functions(prefix):
    """Disassembly of the engine's static functions whose names start with
    prefix, as {name: text}; None when objdump or the symbols are missing."""
    from kms._native import _aead

    if shutil.which("objdump") is None:
        return None
    dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", _aead.__file__],
                          capture_output=True, text=True, timeout=300).stdout
    found = {}
    for match in re.finditer(r"^[0-9a-f]+ <(%s[a-z_0-9.]*)>:\n(.*?)(?=^[0-9a-f]+ <|\Z)" % prefix,
                             dump, re.M | re.S):
        found[match.group(1)] = match.group(2)
    return found or None


@pytest.mark.skipif(not HAS_VAES256, reason="the 256-bit tier is not built or not usable here")
def test_the_256_bit_tier_holds_no_avx512_instruction():
    """VEX-encoded vaesenc/vpclmulqdq on ymm only: no zmm, no opmask, no
    xmm/ymm16-31 and no EVEX decorations, so a CPU without AVX-512 runs it."""
    functions = _tier_functions("vaes256_")
    if functions is None:
        pytest.skip("objdump or the engine's symbols are not available")
    assert {"vaes256_encrypt", "vaes256_decrypt", "vaes256_encrypt_small",
            "vaes256_decrypt_small"} <= set(functions)
    evex = re.compile(r"%zmm|%k[0-7]|%[xy]mm(1[6-9]|2[0-9]|3[01])\b|\{")
    for name, body in functions.items():
        bad = [line for line in body.splitlines() if evex.search(line)]
        assert not bad, (name, bad[:5])
    bulk = functions["vaes256_encrypt"] + functions["vaes256_decrypt"]
    assert re.search(r"vaesenc\s+%ymm", bulk) or re.search(r"vaesenc\s+\S*,%ymm", bulk)
    assert re.search(r"vpclmul\w*\s+\S*%ymm", bulk)
