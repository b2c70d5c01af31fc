"""The append-only store: durability, sharing between processes,
compaction, and refusal of damaged files."""
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from kms.errors import StoreCorrupt
from kms.store import LogStore, Op
from kms.store import log as store_log


def _put(store, ns, id, value):
    store.commit(lambda: [Op("put", ns, id, value)])


def test_records_survive_reopening(tmp_path):
    s = LogStore(str(tmp_path))
    _put(s, "key", "a", {"alias": "first", "material": b"\x00\x01"})
    _put(s, "key", "b", {"alias": "second"})
    s.commit(lambda: [Op("del", "key", "b")])
    s.close()
    again = LogStore(str(tmp_path))
    assert again.items("key") == {"a": {"alias": "first", "material": b"\x00\x01"}}


def test_files_are_private(tmp_path):
    s = LogStore(str(tmp_path))
    _put(s, "key", "a", 1)
    for name in ("store.log", "store.lock"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600


def test_a_failed_precondition_writes_nothing(tmp_path):
    s = LogStore(str(tmp_path))
    size = os.path.getsize(s.path)

    def build():
        raise ValueError("refused")

    with pytest.raises(ValueError):
        s.commit(build)
    assert os.path.getsize(s.path) == size


def test_a_change_in_one_store_is_seen_by_another_after_refresh(tmp_path):
    a, b = LogStore(str(tmp_path)), LogStore(str(tmp_path))
    _put(a, "key", "x", "v1")
    b.refresh()
    assert b.get("key", "x") == "v1"
    _put(b, "key", "x", "v2")
    a.refresh()
    assert a.get("key", "x") == "v2"


def test_precondition_runs_on_the_latest_state(tmp_path):
    a, b = LogStore(str(tmp_path)), LogStore(str(tmp_path))
    _put(a, "alias", "name", "key-1")
    seen = []
    b.commit(lambda: seen.append(b.get("alias", "name")) or [])
    assert seen == ["key-1"]  # b had not refreshed, commit caught it up


def _child_writes(directory, count):
    s = LogStore(directory)
    for i in range(count):
        s.commit(lambda i=i: [Op("put", "key", f"child-{i}", i)])


def test_writes_from_another_process(tmp_path):
    parent = LogStore(str(tmp_path))
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_child_writes, args=(str(tmp_path), 50))
    child.start()
    for i in range(50):
        parent.commit(lambda i=i: [Op("put", "key", f"parent-{i}", i)])
    child.join(60)
    assert child.exitcode == 0
    parent.refresh()
    assert len(parent.items("key")) == 100
    assert len(LogStore(str(tmp_path)).items("key")) == 100


def test_compaction_removes_deleted_material_from_disk(tmp_path):
    a, b = LogStore(str(tmp_path)), LogStore(str(tmp_path))
    secret = b"\xde\xad\xbe\xef" * 8
    _put(a, "ver", "k/1", {"wrapped": secret})
    _put(a, "key", "k", {"alias": "keep"})
    a.commit(lambda: [Op("del", "ver", "k/1")])
    assert secret in Path(a.path).read_bytes()
    a.compact()
    assert secret not in Path(a.path).read_bytes()
    b.refresh()  # b notices the replaced file and reloads
    assert b.items("ver") == {} and b.get("key", "k") == {"alias": "keep"}


def test_log_compacts_itself_when_it_outgrows_the_state(tmp_path, monkeypatch):
    monkeypatch.setattr(store_log, "COMPACT_MIN_BYTES", 4096)
    s = LogStore(str(tmp_path))
    for i in range(2000):
        _put(s, "key", "same", {"counter": i, "pad": b"x" * 50})
    assert os.path.getsize(s.path) < 4096 * 2
    assert LogStore(str(tmp_path)).get("key", "same")["counter"] == 1999


def _damaged_store(tmp_path, damage):
    s = LogStore(str(tmp_path))
    for i in range(5):
        _put(s, "key", f"k{i}", {"i": i})
    s.close()
    data = bytearray((tmp_path / "store.log").read_bytes())
    damage(data)
    (tmp_path / "store.log").write_bytes(bytes(data))


def test_truncated_tail_refuses_to_load_and_names_the_place(tmp_path):
    _damaged_store(tmp_path, lambda d: d.__delitem__(slice(len(d) - 3, None)))
    with pytest.raises(StoreCorrupt, match=r"store\.log: at byte \d+: truncated record"):
        LogStore(str(tmp_path))


def test_flipped_byte_refuses_to_load(tmp_path):
    def flip(d):
        d[len(d) // 2] ^= 0x40

    _damaged_store(tmp_path, flip)
    with pytest.raises(StoreCorrupt, match="checksum mismatch"):
        LogStore(str(tmp_path))


def test_foreign_file_refuses_to_load(tmp_path):
    (tmp_path / "store.log").write_bytes(b"not a store at all")
    with pytest.raises(StoreCorrupt, match="bad magic"):
        LogStore(str(tmp_path))


def test_repair_keeps_every_intact_record(tmp_path):
    _damaged_store(tmp_path, lambda d: d.extend(b"\x00\x00\x01\x00garbage"))
    with pytest.raises(StoreCorrupt):
        LogStore(str(tmp_path))
    what = store_log.repair(str(tmp_path / "store.log"))
    assert "cut at byte" in what and (tmp_path / "store.log.damaged").exists()
    assert sorted(LogStore(str(tmp_path)).items("key")) == [f"k{i}" for i in range(5)]
    assert store_log.repair(str(tmp_path / "store.log")) is None


def test_listeners_hear_a_reset_when_another_process_compacts(tmp_path):
    a, b = LogStore(str(tmp_path)), LogStore(str(tmp_path))
    heard = []
    b.listeners.append(heard.append)
    _put(a, "ver", "k/1", {"wrapped": b"x"})
    a.commit(lambda: [Op("del", "ver", "k/1")])
    a.compact()
    b.refresh()
    assert Op("reset", "", "") in heard and b.items("ver") == {}
