"""cffi build script for the native AES-GCM engine (out-of-line API mode).

setup.py points ``cffi_modules`` here; the result is ``kms._native._aead``.
The declarations are the marked parts of ``kms_aead.h`` (the AES-GCM
engine) and ``kms_codecs.h`` (the wire-format codecs over it), so the C
headers stay the one source of truth for the API.
"""
import os
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
SOURCES = ["aead.c", "arena.c", "b64_avx2.c", "cpu_features.c", "gcm_aesni.c", "gcm_vaes.c",
           "gcm_vaes256.c"]
# The wire-format codecs over the engine (their API: kms_codecs.h).
CODEC_SOURCES = ["bulk.c", "codec_words.c", "json_scan.c", "msgpack_scan.c", "transit.c",
                 "transit_json.c"]


def read_cdef(name: str) -> str:
    header = (HERE / name).read_text()
    start = header.index("/* cdef-begin */") + len("/* cdef-begin */")
    end = header.index("/* cdef-end */")
    return header[start:end]


def compile_args() -> list:
    # Plain -O2: tiers use per-function target attributes, never global -m
    # flags, so the library loads on any x86-64 CPU.
    args = ["-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra"]
    if os.environ.get("KMS_SANITIZE"):
        args += ["-O1", "-g", "-fno-omit-frame-pointer",
                 "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    return args


def link_args() -> list:
    if os.environ.get("KMS_SANITIZE"):
        return ["-fsanitize=address,undefined"]
    return []


ffibuilder = FFI()
ffibuilder.cdef(read_cdef("kms_aead.h") + read_cdef("kms_codecs.h"))
ffibuilder.set_source(
    "kms._native._aead",
    '#include "kms_aead.h"\n#include "kms_codecs.h"',
    sources=[str(pathlib.Path("csrc") / name) for name in SOURCES + CODEC_SOURCES],
    include_dirs=["csrc"],
    extra_compile_args=compile_args(),
    extra_link_args=link_args(),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
