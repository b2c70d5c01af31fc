"""Replacing a file so that a crash leaves either the old one or the whole
new one: write a temp file, fsync it, rename it over, fsync the directory.

A step that fails before the rename leaves the old file as it was and no
temp file behind (on a full disk a half-written temp file would keep the
space it took); OSError tells why."""
import errno
import logging
import os
from typing import Iterable

log = logging.getLogger("kms.durable")


def write_all(fd: int, data: bytes, offset: int) -> None:
    """pwrite all of data at offset. A write that makes no progress is a
    full disk (the kernel reports ENOSPC only on the call after a short one)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view, offset = view[written:], offset + written


def write_temp(path: str, chunks: Iterable[bytes], mode: int = 0o600) -> str:
    """Write chunks to a durable temp file beside path; returns its path."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # a leftover temp file may have had another mode
        offset = 0
        for chunk in chunks:
            write_all(fd, chunk, offset)
            offset += len(chunk)
        os.fsync(fd)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    finally:
        os.close(fd)
    return tmp


def install(tmp: str, path: str) -> None:
    """Rename a temp file from write_temp over path, durably. Raises only
    before the rename (then the temp file is gone and path is unchanged)."""
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    sync_directory(os.path.dirname(path) or ".")


def sync_directory(directory: str) -> None:
    """fsync a directory, so a rename in it survives a crash. Once the
    rename is done every process sees the new file whatever happens here, so
    a failure is not raised: undoing the rename is impossible (the old file
    is gone), and saying the replacement failed would be untrue; a crash
    before the directory reaches the disk can only bring back the whole old
    file."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        log.error("a file in %s was replaced, but the directory could not be synced (%s): "
                  "a crash now may bring back the old file", directory, exc.strerror)


def replace_file(path: str, chunks: Iterable[bytes], mode: int = 0o600) -> None:
    install(write_temp(path, chunks, mode), path)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
