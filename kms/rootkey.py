"""Where the root key comes from, and what it is used for: wrapping key
versions and stored secrets, nothing else.

Sources sit behind one small interface so Shamir unsealing or a PKCS#11 HSM
can be added without touching the rest: ``RootKeySource.load()`` returns the
32-byte key. Three exist today: a 0600 file in the data directory (created
on first start), the KMS_ROOT_KEY environment variable (base64), and a key
handed over in memory: ``kms server`` takes KMS_ROOT_KEY out of its
environment before it starts workers and passes the key to each of them
itself (kms.server.WorkerConfig), so no serving process carries it in
/proc/PID/environ.
"""
import base64
import binascii
import hashlib
import hmac
import os
import stat
from typing import Optional, Protocol

from kms import errors
from kms.aead import AESGCM

ROOT_KEY_BYTES = 32
ENV_VAR = "KMS_ROOT_KEY"


class RootKeyError(errors.InternalError):
    code = "root_key_error"


class RootKeySource(Protocol):
    description: str

    def load(self) -> bytes: ...


class FileRootKey:
    """root.key in the data directory: 32 random bytes, mode 0600."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"file {path}"

    def create(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, os.urandom(ROOT_KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)

    def load(self) -> bytes:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise RootKeyError(f"root key file {self.path} is missing") from None
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise RootKeyError(f"root key file {self.path} is readable by others "
                               f"(mode {stat.S_IMODE(st.st_mode):o}); it must be 0600")
        with open(self.path, "rb") as f:
            key = f.read()
        if len(key) != ROOT_KEY_BYTES:
            raise RootKeyError(f"root key file {self.path} holds {len(key)} bytes, not {ROOT_KEY_BYTES}")
        return key


def _decode(value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RootKeyError(f"{ENV_VAR} is not valid base64") from None
    if len(key) != ROOT_KEY_BYTES:
        raise RootKeyError(f"{ENV_VAR} decodes to {len(key)} bytes, not {ROOT_KEY_BYTES}")
    return key


class EnvRootKey:
    """The root key as base64 in an environment variable (for deployments
    whose secret store injects it)."""

    description = f"environment variable {ENV_VAR}"

    def load(self) -> bytes:
        try:
            value = os.environ[ENV_VAR]
        except KeyError:
            raise RootKeyError(f"{ENV_VAR} is not set") from None
        return _decode(value)


class HandedOverRootKey:
    """A root key this process was given in memory (see hand_over)."""

    description = f"environment variable {ENV_VAR} (handed over by kms server)"

    def __init__(self, key: bytes) -> None:
        self._key = key

    def load(self) -> bytes:
        return self._key


# Set once per process, by the kms server supervisor or by a worker as it
# loads; it wins over the environment and the file.
_handed_over: Optional[HandedOverRootKey] = None


def hand_over(key: bytes) -> None:
    """Make `key` this process's root key source (source_for answers it)."""
    global _handed_over
    if len(key) != ROOT_KEY_BYTES:
        raise RootKeyError(f"a handed-over root key must be {ROOT_KEY_BYTES} bytes, not {len(key)}")
    _handed_over = HandedOverRootKey(key)


def take_from_environment() -> Optional[bytes]:
    """Remove KMS_ROOT_KEY from the environment (so processes started from
    here do not inherit it) and keep it in memory instead. Returns the key,
    for handing to workers, or None when the variable is not set."""
    value = os.environ.pop(ENV_VAR, None)
    if value is None:
        return None
    key = _decode(value)
    hand_over(key)
    return key


def source_for(data_dir: str) -> RootKeySource:
    if _handed_over is not None:
        return _handed_over
    if ENV_VAR in os.environ:
        return EnvRootKey()
    return FileRootKey(os.path.join(data_dir, "root.key"))


class Wrapper:
    """AES-256-GCM under the root key. The associated data names what is
    wrapped (purpose, owner id, version), so a wrapped value cannot be
    moved onto another key, version or account."""

    def __init__(self, root_key: bytes) -> None:
        self._box = AESGCM(root_key)
        # Only a one-way derivation of the root key is kept beside the box,
        # for server secrets that must be stable across workers and starts.
        self._derive_key = hmac.new(root_key, b"kms-derive/1", hashlib.sha256).digest()

    def derive(self, label: str) -> bytes:
        """A 32-byte secret for one purpose (label), the same in every worker
        of this data directory and independent of every wrapped value."""
        return hmac.new(self._derive_key, label.encode(), hashlib.sha256).digest()

    @staticmethod
    def _context(purpose: str, owner: str, version: int) -> bytes:
        return f"kms-wrap/1\x00{purpose}\x00{owner}\x00{version}".encode()

    def wrap(self, purpose: str, owner: str, version: int, secret: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._box.encrypt(nonce, secret, self._context(purpose, owner, version))

    def unwrap(self, purpose: str, owner: str, version: int, wrapped: bytes) -> bytes:
        """Raises cryptography's InvalidTag if the value was altered, made
        under another root key, or belongs to another owner/version."""
        return self._box.decrypt(wrapped[:12], wrapped[12:], self._context(purpose, owner, version))
