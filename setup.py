"""Build hook for the native AES-GCM engine (cffi out-of-line API mode).

Metadata lives in pyproject.toml. The extension is optional: if it cannot be
compiled the install still succeeds and kms.aead runs on its fallback, saying
so at import. KMS_PUREPYTHON=1 skips the extension entirely.
"""
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Warn instead of failing when the C engine does not compile."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # compiler missing, headers missing, ...
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._warn(exc)

    @staticmethod
    def _warn(exc):
        sys.stderr.write(
            "WARNING: the native AES-GCM engine was not built (%s); "
            "kms.aead will use its cryptography fallback.\n" % (exc,)
        )


kwargs = {"cmdclass": {"build_ext": OptionalBuildExt}}
if os.environ.get("KMS_PUREPYTHON") != "1":
    kwargs["cffi_modules"] = ["csrc/build_ffi.py:ffibuilder"]

setup(**kwargs)
