"""The dispatcher trusts CPUID and XGETBV, not the build host: under
Valgrind, whose virtual CPU reports no AVX-512 and no VAES, the engine must
pick the AES-NI tier and still compute correct results, never die with
SIGILL (spec/aesni-gcm-notes.md, section 5.2)."""
import os
import shutil
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

from kms import aead

PROBE = """
from kms import aead
box = aead.AESGCM(bytes(range(32)))
print(aead.BACKEND)
print(box.encrypt(bytes(12), bytes(1000), b"ad").hex())
print(list(box.decrypt_batch([bytes(12)], [box.encrypt(bytes(12), b"x", None)])))
"""


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="the AddressSanitizer build cannot run under Valgrind")
@pytest.mark.skipif("aesni" not in aead.available_backends(), reason="no native engine on this machine")
def test_engine_falls_back_to_aesni_when_the_cpu_hides_vaes():
    # --tool=none: no memory checking, just Valgrind's virtual CPU.
    proc = subprocess.run(["valgrind", "--tool=none", "-q", sys.executable, "-c", PROBE],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    backend, sealed, opened = proc.stdout.split("\n")[:3]
    assert backend == "aesni"
    assert bytes.fromhex(sealed) == OpenSSLAESGCM(bytes(range(32))).encrypt(bytes(12), bytes(1000), b"ad")
    assert opened == "[b'x']"
