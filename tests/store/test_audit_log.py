"""The hash-chained audit log: intact chains verify, and any edit, removal
or reordering is found at the right line; several writers keep one chain."""
import errno
import json
import os

import pytest

from kms.errors import AuditUnavailable

from kms import audit


def _write(path, n, writers=1):
    logs = [audit.AuditLog(str(path)) for _ in range(writers)]
    for i in range(n):
        logs[i % writers].record(time=i, request_id=f"r{i}", account="AKIDx", action="Encrypt",
                                 key_id="k", result="Success", latency_ms=0.1)
    for log in logs:
        log.close()


def test_intact_chain_verifies(tmp_path):
    path = tmp_path / "audit.log"
    _write(path, 10)
    assert audit.verify(str(path)) == (10, None)
    entry = json.loads(path.read_text().splitlines()[0])
    assert set(entry) == {"time", "request_id", "account", "action", "key_id", "result",
                          "latency_ms", "prev", "hash"}


def test_interleaved_writers_keep_one_chain(tmp_path):
    path = tmp_path / "audit.log"
    _write(path, 30, writers=3)
    assert audit.verify(str(path)) == (30, None)


def test_edited_line_is_found(tmp_path):
    path = tmp_path / "audit.log"
    _write(path, 5)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"Success"', '"Failure"')
    path.write_text("\n".join(lines) + "\n")
    assert audit.verify(str(path)) == (2, "line 3: content does not match its hash (altered)")


def test_removed_or_reordered_lines_break_the_chain(tmp_path):
    path = tmp_path / "audit.log"
    _write(path, 5)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    assert audit.verify(str(path))[1].startswith("line 2: does not follow")
    path.write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")
    assert audit.verify(str(path))[1].startswith("line 1: does not follow")


def test_lines_are_canonical_for_odd_field_values(tmp_path):
    """record() builds each line by hand; verify recomputes it with the
    general encoder, so any difference (escapes, non-ASCII, floats, None,
    non-string values) would break the chain."""
    import random
    rng = random.Random(5)
    values = [None, "", "plain", 'quote"d', "back\\slash", "ünïcode", "tab\t", "nl\n", 0.1, 1e-7,
              123456789.123, 3, True, float("nan"), float("inf"), "200", ["list"], {"k": 1}]
    path = tmp_path / "audit.log"
    log = audit.AuditLog(str(path))
    for _ in range(3000):
        log.record(**{f: rng.choice(values) for f in audit.FIELDS})
    log.close()
    assert audit.verify(str(path)) == (3000, None)


def test_appends_from_the_event_loop_are_written_before_they_return(tmp_path):
    """append() queues the entries of one loop iteration and writes them
    together; two logs on one file stand for two workers."""
    import asyncio
    path = tmp_path / "audit.log"
    logs = [audit.AuditLog(str(path)), audit.AuditLog(str(path))]

    async def one(i):
        await logs[i % 2].append(time=i, request_id=f"r{i}", account="AKIDx", action="Encrypt",
                                 key_id="k", result="200", latency_ms=0.1)
        ids = {json.loads(line)["request_id"] for line in path.read_text().splitlines()}
        assert f"r{i}" in ids  # answered only once it is on file
        await asyncio.sleep(0)

    async def main():
        for _ in range(5):
            await asyncio.gather(*(one(i) for i in range(40)))

    asyncio.run(main())
    for log in logs:
        log.close()
    assert audit.verify(str(path)) == (200, None)


def test_text_fields_are_bounded(tmp_path):
    """A caller controls the action header and ids: a 1 MB value must not
    become a 1 MB line."""
    path = tmp_path / "audit.log"
    log = audit.AuditLog(str(path))
    log.record(time=1.0, action="A" * 1_000_000, account="b" * 5000, key_id="\u00e9" * 300,
               request_id="r", result="Success", latency_ms=1.5)
    log.close()
    line = path.read_bytes()
    assert len(line) < 2000  # at most 6 bytes per cut character (\\uXXXX)
    entry = json.loads(line)
    assert entry["action"] == "A" * (audit.MAX_FIELD - 3) + "..."
    assert len(entry["key_id"]) == audit.MAX_FIELD
    assert audit.verify(str(path)) == (1, None)


def test_a_failed_write_leaves_no_torn_line_and_the_chain_goes_on(tmp_path, monkeypatch):
    path = tmp_path / "audit.log"
    log = audit.AuditLog(str(path))
    log.record(time=1, action="Encrypt")
    real_write = os.write
    calls = []

    def short_then_full(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))  # part of the line, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit.os, "write", short_then_full)
    with pytest.raises(AuditUnavailable):
        log.record(time=2, action="DisableKey")
    monkeypatch.setattr(audit.os, "write", real_write)
    assert audit.verify(str(path)) == (1, None)  # the torn 10 bytes are gone
    log.record(time=3, action="EnableKey")
    assert audit.verify(str(path)) == (2, None)


def test_a_damaged_last_line_stops_auditing_instead_of_guessing(tmp_path):
    path = tmp_path / "audit.log"
    log = audit.AuditLog(str(path))
    log.record(time=1, action="Encrypt")
    with open(path, "ab") as f:
        f.write(b"not an entry\n")
    other = audit.AuditLog(str(path))  # another worker: must read the tail
    with pytest.raises(AuditUnavailable, match="does not end with an audit entry"):
        other.record(time=2, action="Encrypt")


def test_a_failed_write_fails_every_queued_append(tmp_path):
    import asyncio
    import pytest
    log = audit.AuditLog(str(tmp_path / "audit.log"))
    log.close()  # the descriptor is gone: the write fails

    async def main():
        results = await asyncio.gather(*(log.append(time=i, action="Encrypt") for i in range(3)),
                                       return_exceptions=True)
        assert all(isinstance(r, AuditUnavailable) for r in results)

    asyncio.run(main())
    with pytest.raises(AuditUnavailable):
        log.record(time=1)


def test_a_cancelled_request_does_not_strand_the_others_in_its_batch(tmp_path):
    import asyncio
    log = audit.AuditLog(str(tmp_path / "audit.log"))

    async def main():
        first = asyncio.ensure_future(log.append(time=1, action="Encrypt"))
        second = asyncio.ensure_future(log.append(time=2, action="Encrypt"))
        await asyncio.sleep(0)  # both queued for one write
        first.cancel()
        await asyncio.wait_for(second, 5)  # answered, not left hanging

    asyncio.run(main())
    log.close()
    assert audit.verify(str(tmp_path / "audit.log"))[0] == 2


def test_a_torn_line_whose_cut_failed_is_cut_by_the_next_write(tmp_path, monkeypatch):
    path = tmp_path / "audit.log"
    log = audit.AuditLog(str(path))
    log.record(time=1, action="Encrypt")
    real_write, calls = os.write, []

    def short_then_full(fd, data):
        calls.append(1)
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))
        raise OSError(errno.ENOSPC, "No space left on device")

    def cannot_cut(fd, size):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(audit.os, "write", short_then_full)
    monkeypatch.setattr(audit.os, "ftruncate", cannot_cut)
    with pytest.raises(AuditUnavailable, match="No space left") as caught:
        log.record(time=2, action="DisableKey")
    assert str(tmp_path) not in str(caught.value), "callers may see it: no path"
    monkeypatch.undo()
    log.record(time=3, action="EnableKey")  # before: "does not end with an audit entry" for good
    assert audit.verify(str(path)) == (2, None)


def test_a_deleted_audit_log_is_not_written_to(tmp_path):
    path = tmp_path / "audit.log"
    log = audit.AuditLog(str(path))
    log.record(time=1, action="Encrypt")
    os.unlink(path)  # its lines would go to an unlinked file, and be lost
    with pytest.raises(AuditUnavailable, match="deleted"):
        log.record(time=2, action="Encrypt")
