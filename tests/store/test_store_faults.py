"""The store under failing writes (simulated here; tests/server/test_faults.py
fills and remounts real file systems) and repair after damage."""
import errno
import os
from pathlib import Path

import pytest

from kms.errors import StoreCorrupt, StoreUnavailable
from kms.store import LogStore, Op
from kms.store import log as store_log
from kms.store.repair import scan


def _put(store, ns, id, value):
    store.commit(lambda: [Op("put", ns, id, value)])


def _fail(number, message):
    def fail(*args, **kwargs):
        raise OSError(number, message)
    return fail


def _short_then(number, message, keep=20):
    """An os.pwrite that writes `keep` bytes once, then fails like a full disk."""
    real, calls = os.pwrite, []

    def pwrite(fd, data, offset):
        calls.append(offset)
        if len(calls) == 1:
            return real(fd, bytes(data[:keep]), offset)
        raise OSError(number, message)
    return pwrite


# ---- a failed write changes nothing, and service comes back ----------------

def test_a_short_write_on_a_full_disk_is_cut_back_and_reads_go_on(tmp_path, monkeypatch):
    a, b = LogStore(str(tmp_path)), LogStore(str(tmp_path))
    _put(a, "key", "old", {"v": 1})
    size = os.path.getsize(a.path)
    monkeypatch.setattr(os, "pwrite", _short_then(errno.ENOSPC, "No space left on device"))
    with pytest.raises(StoreUnavailable, match="No space left on device") as caught:
        _put(a, "key", "new", {"v": 2})
    assert "/" not in str(caught.value), "no path in what callers see"
    assert os.path.getsize(a.path) == size, "the torn record is cut back"
    assert a.get("key", "new") is None
    a.refresh()
    b.refresh()  # before: StoreCorrupt (truncated record) in every process until a repair
    assert a.get("key", "old") == b.get("key", "old") == {"v": 1}
    monkeypatch.undo()  # space is back: no restart, no repair
    _put(a, "key", "new", {"v": 2})
    b.refresh()
    assert b.get("key", "new") == {"v": 2}
    assert sorted(LogStore(str(tmp_path)).items("key")) == ["new", "old"]


@pytest.mark.parametrize("number, message", [
    (errno.EIO, "Input/output error"),
    (errno.ENOSPC, "No space left on device"),
])
def test_a_failed_fsync_is_cut_back_and_no_one_sees_the_change(tmp_path, monkeypatch, number, message):
    a, b = LogStore(str(tmp_path)), LogStore(str(tmp_path))
    _put(a, "key", "old", 1)
    size = os.path.getsize(a.path)
    monkeypatch.setattr(os, "fsync", _fail(number, message))
    with pytest.raises(StoreUnavailable, match=message):
        _put(a, "key", "new", 2)
    monkeypatch.undo()
    assert os.path.getsize(a.path) == size
    b.refresh()
    assert a.get("key", "new") is None and b.get("key", "new") is None


def test_a_torn_record_whose_cut_failed_is_ignored_and_cut_by_the_next_writer(tmp_path, monkeypatch):
    a, b = LogStore(str(tmp_path)), LogStore(str(tmp_path))
    _put(a, "key", "old", 1)
    size = os.path.getsize(a.path)
    monkeypatch.setattr(os, "pwrite", _short_then(errno.ENOSPC, "No space left on device"))
    monkeypatch.setattr(os, "ftruncate", _fail(errno.EIO, "Input/output error"))
    with pytest.raises(StoreUnavailable):
        _put(a, "key", "lost", 2)
    monkeypatch.undo()
    assert os.path.getsize(a.path) == size + 20  # the torn bytes are still there
    for store in (a, b):  # readers know a torn tail for a failed write, not damage
        store.refresh()
        assert store.get("key", "old") == 1
    _put(b, "key", "next", 3)  # another process cuts it before it appends
    a.refresh()
    assert a.get("key", "next") == 3 and a.get("key", "lost") is None
    assert sorted(LogStore(str(tmp_path)).items("key")) == ["next", "old"]


def test_a_whole_record_whose_fsync_and_cut_failed_has_an_unknown_outcome_and_is_cut_next(tmp_path, monkeypatch):
    a, b = LogStore(str(tmp_path)), LogStore(str(tmp_path))
    _put(a, "key", "old", 1)
    monkeypatch.setattr(os, "fsync", _fail(errno.EIO, "Input/output error"))
    monkeypatch.setattr(os, "ftruncate", _fail(errno.EIO, "Input/output error"))
    # Another worker may take those bytes for a record before they are cut:
    # the caller is not told that nothing was changed.
    with pytest.raises(StoreUnavailable, match="may or may not have been stored"):
        _put(a, "key", "unsynced", 2)
    monkeypatch.undo()
    a.refresh()
    assert a.get("key", "unsynced") is None, "the writer does not read its failed write back"
    b.refresh()  # another worker may see it meanwhile, as after a crash before the answer
    _put(a, "key", "next", 3)  # cut before the next change
    b.refresh()  # the file shrank below what b had read: b reloads
    assert b.get("key", "unsynced") is None and b.get("key", "next") == 3
    assert sorted(LogStore(str(tmp_path)).items("key")) == ["next", "old"]


def test_a_removed_store_file_keeps_reads_and_refuses_changes(tmp_path):
    s = LogStore(str(tmp_path))
    _put(s, "key", "k", 1)
    os.unlink(s.path)
    s.refresh()
    assert s.get("key", "k") == 1
    with pytest.raises(StoreUnavailable, match="missing"):
        _put(s, "key", "lost", 2)


# ---- a compacting change is one step ---------------------------------------

def test_a_compacting_commit_that_cannot_write_its_file_changes_nothing(tmp_path, monkeypatch):
    s = LogStore(str(tmp_path))
    secret = b"\xde\xad\xbe\xef" * 8
    _put(s, "ver", "k/1", {"wrapped": secret})
    before = Path(s.path).read_bytes()
    monkeypatch.setattr(os, "pwrite", _fail(errno.ENOSPC, "No space left on device"))
    with pytest.raises(StoreUnavailable, match="No space left on device"):
        s.commit(lambda: [Op("del", "ver", "k/1")], compact=True)
    monkeypatch.undo()
    # Before: the delete was appended and applied, then compaction failed (a 500 that had deleted).
    assert Path(s.path).read_bytes() == before
    assert s.get("ver", "k/1") == {"wrapped": secret}
    assert not (tmp_path / "store.log.tmp").exists(), "no half-written temp file keeps the space"
    assert LogStore(str(tmp_path)).get("ver", "k/1") == {"wrapped": secret}
    s.commit(lambda: [Op("del", "ver", "k/1")], compact=True)  # space is back
    assert s.get("ver", "k/1") is None and secret not in Path(s.path).read_bytes()


def test_a_failed_automatic_compaction_does_not_fail_the_change(tmp_path, monkeypatch):
    monkeypatch.setattr(store_log, "COMPACT_MIN_BYTES", 2048)
    monkeypatch.setattr(store_log, "COMPACT_RETRY_BYTES", 1024)
    s = LogStore(str(tmp_path))
    real, tries = store_log.write_temp, []

    def full(*args):
        tries.append(1)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_log, "write_temp", full)
    for i in range(100):  # about 8 KiB: due from 2 KiB on
        _put(s, "key", "same", {"counter": i, "pad": b"x" * 50})
    assert 1 <= len(tries) <= 8, "tried again after growth, not on every change"
    assert LogStore(str(tmp_path)).get("key", "same")["counter"] == 99
    monkeypatch.setattr(store_log, "write_temp", real)
    for i in range(100, 150):
        _put(s, "key", "same", {"counter": i, "pad": b"x" * 50})
    assert os.path.getsize(s.path) < 2048 * 2, "compaction resumed once it could"


def test_compaction_refuses_to_paper_over_damage(tmp_path):
    s = LogStore(str(tmp_path))
    for i in range(3):
        _put(s, "key", f"k{i}", {"i": i})
    data = bytearray(Path(s.path).read_bytes())
    data[20] ^= 0x01  # damage, on disk, a record this process read long ago
    Path(s.path).write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match="checksum mismatch.*before compaction"):
        s.commit(lambda: [Op("del", "key", "k2")], compact=True)
    assert Path(s.path).read_bytes() == bytes(data), "the evidence stays for kms store repair"
    assert s.get("key", "k2") == {"i": 2}


def test_a_writer_does_not_append_after_damage_it_has_not_read(tmp_path):
    a, b = LogStore(str(tmp_path)), LogStore(str(tmp_path))
    _put(a, "key", "k0", 0)
    _put(b, "key", "k1", 1)
    data = bytearray(Path(a.path).read_bytes())
    data[-3] ^= 0x01  # b's record, which a has not read
    Path(a.path).write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match="checksum mismatch"):
        _put(a, "key", "k2", 2)
    assert Path(a.path).read_bytes() == bytes(data)


# ---- repair ----------------------------------------------------------------

def _sixty_keys(tmp_path):
    s = LogStore(str(tmp_path))
    for i in range(60):
        _put(s, "key", f"k{i:02}", {"alias": f"key-{i}", "material": os.urandom(32)})
    s.close()
    return scan(str(tmp_path / "store.log")).kept


def _damage(tmp_path, at, bit=0x08):
    path = tmp_path / "store.log"
    data = bytearray(path.read_bytes())
    data[at] ^= bit
    path.write_bytes(bytes(data))
    return bytes(data)


def test_repair_keeps_every_intact_record_after_a_flipped_byte_in_the_middle(tmp_path):
    records = _sixty_keys(tmp_path)
    start, end = records[30]
    damaged = _damage(tmp_path, (start + end) // 2)  # in record 31's payload
    with pytest.raises(StoreCorrupt, match="checksum mismatch"):
        LogStore(str(tmp_path))
    path = str(tmp_path / "store.log")
    good, problem = store_log.check(path)
    assert good == start and f"bytes {start}-{end}" in str(problem) and "59 intact" in str(problem)

    # Its header held: exactly that record is lost, and repair needs no flag.
    report = store_log.repair(path)
    assert f"bytes {start}-{end} (record checksum mismatch; 1 record lost; it appears to have held" in report
    assert "put key/k30" in report  # what to redo, without the value
    assert "kept 59 intact records, lost 1" in report and path + ".damaged" in report
    assert Path(path + ".damaged").read_bytes() == damaged
    kept = LogStore(str(tmp_path)).items("key")
    assert sorted(kept) == [f"k{i:02}" for i in range(60) if i != 30]  # before: 30 of 60 kept
    assert store_log.check(path)[1] is None and store_log.repair(path) is None


def test_repair_finds_the_next_record_when_a_length_is_damaged(tmp_path):
    records = _sixty_keys(tmp_path)
    start, end = records[10]
    _damage(tmp_path, start, bit=0x40)  # the length's high byte: it now runs far past the end
    path = str(tmp_path / "store.log")
    damaged = Path(path).read_bytes()
    # How many records the damaged range held is unknown: refused, a copy saved.
    with pytest.raises(StoreCorrupt, match="repair refused, nothing was changed.*saved as.*--drop-damaged"):
        store_log.repair(path)
    assert Path(path).read_bytes() == damaged == Path(path + ".damaged").read_bytes()
    report = store_log.repair(path, drop_damaged=True)
    assert f"bytes {start}-{end} (" in report and "at least 1 record lost" in report
    assert len(LogStore(str(tmp_path)).items("key")) == 59


def test_repair_cuts_a_torn_tail_without_asking_and_keeps_earlier_copies(tmp_path):
    records = _sixty_keys(tmp_path)
    path = tmp_path / "store.log"
    path.write_bytes(path.read_bytes()[:-5])
    report = store_log.repair(str(path))
    assert f"cut at byte {records[-1][0]}" in report and "kept 59 intact records, lost 1" in report
    path.write_bytes(path.read_bytes() + b"\x00\x00\x00\x09torn")
    assert str(path) + ".damaged.1" in store_log.repair(str(path))
    assert Path(str(path) + ".damaged").stat().st_size != Path(str(path) + ".damaged.1").stat().st_size
    assert len(LogStore(str(tmp_path)).items("key")) == 59


def test_repair_does_not_take_a_record_inside_a_damaged_payload_for_a_real_one(tmp_path):
    from kms.store import frames
    s = LogStore(str(tmp_path))
    forged = frames.pack([Op("put", "token", "attacker", {"root": True})])
    _put(s, "key", "a", {"description": forged})  # bytes of a valid record inside a value
    _put(s, "key", "b", 1)
    s.close()
    start, end = scan(str(tmp_path / "store.log")).kept[0]
    _damage(tmp_path, end - 2)  # the record holding the forgery is damaged, its header is not
    store_log.repair(str(tmp_path / "store.log"), drop_damaged=True)
    again = LogStore(str(tmp_path))
    assert again.items("token") == {} and again.items("key") == {"b": 1}


def test_a_foreign_file_is_not_repaired(tmp_path):
    (tmp_path / "store.log").write_bytes(b"not a store at all")
    with pytest.raises(StoreCorrupt, match="bad magic"):
        store_log.repair(str(tmp_path / "store.log"), drop_damaged=True)
    assert (tmp_path / "store.log").read_bytes() == b"not a store at all"


# ---- repair refuses what dropping could undo (found by review) --------------

def _damage_record(tmp_path, index):
    """Flip a bit of a record's checksum: its payload still decodes."""
    start, end = scan(str(tmp_path / "store.log")).kept[index]
    return _damage(tmp_path, start + 5), start


@pytest.mark.parametrize("ops, why", [
    ([Op("del", "key", "k05")], "appears to delete something"),
    ([Op("put", "token", "digest-of-a-token", {"revoked": True})], "change access"),
    ([Op("put", "policy", "readers", {"allow": ["*"]})], "change access"),
    ([Op("put", "import", "the-import-token", {"key": "k01"})], "change access"),
    ([Op("put", "key", "k07", {"state": "Disabled"})], "later records change what"),
])
def test_repair_refuses_to_drop_a_change_later_records_may_rely_on(tmp_path, ops, why):
    s = LogStore(str(tmp_path))
    for i in range(10):
        _put(s, "key", f"k{i:02}", {"state": "Enabled"})
    s.commit(lambda: ops)
    _put(s, "key", "k07", {"state": "Enabled", "rotated": True})  # builds on k07's last change
    s.close()
    path = str(tmp_path / "store.log")
    damaged, start = _damage_record(tmp_path, 10)
    with pytest.raises(StoreCorrupt, match=f"repair refused, nothing was changed.*at bytes {start}-.*{why}"
                                           ".*saved as .*--drop-damaged") as refusal:
        store_log.repair(path)
    assert "the-import-token" not in str(refusal.value) and "digest-of-a-token" not in str(refusal.value)
    assert Path(path).read_bytes() == damaged == Path(path + ".damaged").read_bytes()
    assert "--drop-damaged" in str(store_log.check(path)[1])
    report = store_log.repair(path, drop_damaged=True)
    assert "kept 11 intact records, lost 1" in report
    assert "the-import-token" not in report and "digest-of-a-token" not in report


def test_a_lowered_length_inside_a_forged_value_is_not_repaired_silently(tmp_path):
    """A flipped bit that shortens a length onto a record forged inside a
    stored value: the shortened payload does not decode, so it is refused."""
    from kms.store import frames
    s = LogStore(str(tmp_path))
    _put(s, "key", "first", 1)
    forged = frames.pack([Op("put", "token", "attacker", {"root": True})])
    _put(s, "key", "a", {"description": forged})
    _put(s, "key", "b", 1)
    s.close()
    path = tmp_path / "store.log"
    start, end = scan(str(path)).kept[1]
    data = bytearray(path.read_bytes())
    at = bytes(data).index(forged, start)
    length = at - start - frames.HEADER.size  # the header now ends the record where the forgery starts
    data[start:start + 4] = length.to_bytes(4, "big")
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match="repair refused"):
        store_log.repair(str(path))
    assert path.read_bytes() == bytes(data)


def test_repair_waits_for_the_store_lock(tmp_path):
    import fcntl
    import threading
    _sixty_keys(tmp_path)
    _damage_record(tmp_path, 30)
    holder = os.open(str(tmp_path / "store.lock"), os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a writer in the middle of a commit
    done = []
    worker = threading.Thread(target=lambda: done.append(store_log.repair(str(tmp_path / "store.log"))))
    worker.start()
    worker.join(0.5)
    assert not done and not (tmp_path / "store.log.damaged").exists()
    os.close(holder)
    worker.join(10)
    assert done and "kept 59 intact records" in done[0]


def test_when_another_worker_writes_next_an_unknown_outcome_may_have_been_stored(tmp_path, monkeypatch):
    """Found by review: b takes a's unsynced bytes for a record and appends
    after them, so the change stays. The store can't prevent that (only a
    marker shared between workers could); what it must not do is tell the
    caller that nothing was changed."""
    a, b = LogStore(str(tmp_path)), LogStore(str(tmp_path))
    monkeypatch.setattr(os, "fsync", _fail(errno.EIO, "Input/output error"))
    monkeypatch.setattr(os, "ftruncate", _fail(errno.EIO, "Input/output error"))
    with pytest.raises(StoreUnavailable, match="may or may not have been stored"):
        _put(a, "key", "unsynced", 2)
    monkeypatch.undo()
    _put(b, "key", "next", 3)
    assert sorted(LogStore(str(tmp_path)).items("key")) == ["next", "unsynced"]


def test_a_failed_fsync_whose_cut_worked_says_nothing_was_changed(tmp_path, monkeypatch):
    s = LogStore(str(tmp_path))
    monkeypatch.setattr(os, "fsync", _fail(errno.EIO, "Input/output error"))
    with pytest.raises(StoreUnavailable, match="nothing was changed"):
        _put(s, "key", "k", 1)
