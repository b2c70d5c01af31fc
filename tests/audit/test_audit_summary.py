"""The usage summary: what counts as a success or a failure, hour windows,
incremental refreshes that read only new lines, rebuilds when the log or
the index is not what it was, workers refreshing together, and a chain
check that agrees with kms.audit.verify."""
import calendar
import multiprocessing
import os
import stat
import time

import msgpack
import pytest

from kms import audit, audit_summary
from kms.audit_summary import ChainStatus, HourCount, UsageSummary

from audit_files import write

T0 = calendar.timegm((2024, 12, 1, 0, 0, 0))  # an hour's (and a day's) start
HOUR = 3600


def call(when, result="Success", key_id="k1", **extra):
    fields = {"time": when, "request_id": f"r{when}", "account": "AKIDx", "action": "Encrypt",
              "key_id": key_id, "result": result, "latency_ms": 0.5}
    fields.update(extra)
    return fields


def calls_at(n, start=T0, step=60.0, **fields):
    return [call(start + i * step, **fields) for i in range(n)]


def totals(summary, key_id=None, now=T0 + 23 * HOUR, hours=24):
    counts = summary.hourly(key_id, now, hours)
    return sum(c.successes for c in counts), sum(c.failures for c in counts)


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "audit.log", tmp_path / "usage.idx"


def summary_of(paths):
    return UsageSummary(str(paths[0]), str(paths[1]))


def reads_during(monkeypatch, action):
    """The (offset, length) of every pread of the log while action runs."""
    reads, real = [], os.pread

    def spy(fd, length, offset):
        reads.append((offset, length))
        return real(fd, length, offset)

    monkeypatch.setattr(audit_summary.os, "pread", spy)
    try:
        action()
    finally:
        monkeypatch.setattr(audit_summary.os, "pread", real)
    return reads


def only_after(reads, offset):
    """Whether nothing before offset was read but the log's identity: its
    first line and the bytes just before offset."""
    return all(o >= offset - 64 or (o == 0 and n <= 4096) for o, n in reads)


# ---- counting ----------------------------------------------------------------------


def test_counting_rules(paths):
    log, _ = paths
    write(log, [
        call(T0 + 10, result=audit.STARTED, latency_ms=None),  # intents are not counted
        call(T0 + 11, result="Success"),
        call(T0 + 12, result="200"), call(T0 + 13, result="204"), call(T0 + 14, result="299"),
        call(T0 + 15, result="400"), call(T0 + 16, result="403"), call(T0 + 17, result="500"),
        call(T0 + 18, result="ResourceUnavailable.CmkDisabled"),
        call(T0 + 19, result="AuthFailure.SignatureFailure"),
        call(T0 + 20, result="2000"), call(T0 + 21, result="success"), call(T0 + 22, result=None),
        call(T0 + 23, result="Success", key_id="k2"),
        call(T0 + 24, result="403", key_id="k2"),
        call(T0 + 25, result="Success", key_id=None),  # CreateKey-like: in the totals only
        call(T0 + 26, result=audit.STARTED, key_id="k2", latency_ms=None),
    ])
    s = summary_of(paths)
    s.refresh()
    assert totals(s, "k1") == (4, 8)
    assert totals(s, "k2") == (1, 1)
    assert totals(s, None) == (6, 9)
    assert totals(s, "k3") == (0, 0)


def test_outcome_of_results():
    assert audit_summary.outcome("Success") is True
    assert audit_summary.outcome("200") is True and audit_summary.outcome("299") is True
    assert audit_summary.outcome(audit.STARTED) is None
    for result in ("199", "300", "2000", "20", "２00", "2²0", "success", None, 200):
        assert audit_summary.outcome(result) is False, result


def test_lines_in_other_forms_are_counted_alike(paths):
    """Escapes, non-ASCII, "via", integer times: the slow path agrees."""
    log, _ = paths
    write(log, [call(T0 + 1, key_id="clé"), call(T0 + 2, key_id='k"1', result="400"),
                call(T0 + 3, account="a\\b"), call(T0 + 4, via="console"),
                call(T0 + 5, result=audit.STARTED, via="console"), call(T0 + 6.5, result="204"),
                call(int(T0) + 7, result="403")])
    s = summary_of(paths)
    s.refresh()
    assert totals(s, "clé") == (1, 0)
    assert totals(s, 'k"1') == (0, 1)
    assert totals(s, "k1") == (3, 1)
    assert totals(s, None) == (4, 2)


def test_hours_are_bucketed_by_time(paths):
    log, _ = paths
    write(log, [call(T0 + HOUR - 0.001), call(T0 + HOUR), call(T0 + 2 * HOUR + 1, result="400"),
                call(T0 + 5 * HOUR + 59 * 60)])
    s = summary_of(paths)
    s.refresh()
    assert s.hourly("k1", T0 + 5 * HOUR + 10, 6) == [
        HourCount(T0, 1, 0), HourCount(T0 + HOUR, 1, 0), HourCount(T0 + 2 * HOUR, 0, 1),
        HourCount(T0 + 3 * HOUR, 0, 0), HourCount(T0 + 4 * HOUR, 0, 0), HourCount(T0 + 5 * HOUR, 1, 0)]


def test_windows_are_zero_filled_and_exactly_as_long_as_asked(paths):
    log, _ = paths
    write(log, [call(T0 + 30)])
    s = summary_of(paths)
    s.refresh()
    week = s.hourly(None, T0 + 1800.5)
    assert len(week) == 168
    assert [c.start for c in week] == [T0 - (167 - i) * HOUR for i in range(168)]
    assert week[-1] == HourCount(T0, 1, 0) and all(c == (c.start, 0, 0) for c in week[:-1])
    later = s.hourly(None, T0 + 100 * HOUR, 3)
    assert later == [HourCount(T0 + h * HOUR, 0, 0) for h in (98, 99, 100)]
    assert s.hourly(None, T0, 0) == []
    with pytest.raises(ValueError):
        s.hourly(None, T0, -1)


def test_nothing_is_known_before_a_refresh_and_a_missing_log_is_empty(paths):
    s = summary_of(paths)
    assert totals(s) == (0, 0)
    s.refresh()
    assert totals(s) == (0, 0)
    assert s.chain() == ChainStatus(0, None)


def test_counts_older_than_14_days_behind_the_newest_line_are_dropped(paths):
    log, _ = paths
    write(log, [call(T0), call(T0 + 14 * 24 * HOUR - 1), call(T0 + 15 * 24 * HOUR)])
    s = summary_of(paths)
    s.refresh()
    assert s.hourly("k1", T0, 1) == [HourCount(T0, 0, 0)]
    assert s.hourly(None, T0, 1) == [HourCount(T0, 0, 0)]
    assert totals(s, "k1", now=T0 + 15 * 24 * HOUR, hours=24 * 2) == (2, 0)
    assert min(s._state.totals) * HOUR > T0  # gone from memory and from the index


# ---- incremental refreshes -------------------------------------------------------------


def test_a_refresh_reads_only_the_lines_appended_since(paths, monkeypatch):
    log, _ = paths
    write(log, calls_at(200))
    s = summary_of(paths)
    s.refresh()
    read_to = os.path.getsize(log)
    assert s._state.offset == read_to
    write(log, calls_at(50, start=T0 + 12_000, result="400"))
    reads = reads_during(monkeypatch, s.refresh)
    assert s._state.offset == os.path.getsize(log)
    assert (read_to - 1, os.path.getsize(log) - read_to + 1) in reads  # from the newline before them
    assert only_after(reads, read_to), reads
    assert totals(s, now=T0 + 23 * HOUR) == (200, 50)


def test_old_lines_are_not_read_again(paths):
    """Rewritten in place after being counted, a line keeps its first count."""
    log, _ = paths
    write(log, calls_at(20))
    s = summary_of(paths)
    s.refresh()
    lines = _lines(log)
    for i in range(2, 7):  # neither the first line nor the last: not the log's identity
        lines[i] = lines[i].replace(b'"result":"Success"', b'"result":"Failure"')
    log.write_bytes(b"".join(lines))
    s.refresh()
    assert totals(s) == (20, 0)


def test_a_partial_last_line_is_left_for_the_next_refresh(paths):
    log, _ = paths
    write(log, calls_at(3) + [call(T0 + 500, result="403")])
    whole = log.read_bytes()
    line = whole[whole.rstrip(b"\n").rfind(b"\n") + 1:]
    os.truncate(log, len(whole) - len(line))
    with open(log, "ab") as f:
        f.write(line[:40])
    s = summary_of(paths)
    s.refresh()
    assert totals(s) == (3, 0)
    assert s._state.offset == len(whole) - len(line)
    with open(log, "ab") as f:
        f.write(line[40:])
    s.refresh()
    assert totals(s) == (3, 1)
    assert s.chain() == audit.verify(str(log)) == (4, None)


def test_a_new_worker_continues_from_the_index(paths, monkeypatch):
    log, index = paths
    write(log, calls_at(30))
    summary_of(paths).refresh()
    read_to = os.path.getsize(log)
    write(log, calls_at(5, start=T0 + 4000, result="400"))
    s = summary_of(paths)
    assert only_after(reads_during(monkeypatch, s.refresh), read_to)
    assert totals(s) == (30, 5)
    assert stat.S_IMODE(os.stat(index).st_mode) == 0o600
    assert not os.path.exists(str(index) + ".tmp")
    assert os.path.exists(str(index) + ".lock")


# ---- rebuilds ----------------------------------------------------------------------


def test_a_replaced_log_is_read_from_scratch(paths, tmp_path):
    log, _ = paths
    write(log, calls_at(10))
    s = summary_of(paths)
    s.refresh()
    fresh = tmp_path / "fresh.log"
    write(fresh, calls_at(40, start=T0 + 10, result="400"))  # longer, another inode
    os.replace(fresh, log)
    s.refresh()
    assert totals(s) == (0, 40)


def test_a_truncated_log_is_read_from_scratch(paths):
    log, _ = paths
    write(log, calls_at(10))
    s = summary_of(paths)
    s.refresh()
    os.truncate(log, 0)
    write(log, calls_at(3, result="400"))  # shorter than what was read
    s.refresh()
    assert totals(s) == (0, 3)


def test_a_log_cut_and_grown_again_is_read_from_scratch(paths):
    """Same inode, same first line, longer than before: the bytes before
    the offset give it away."""
    log, _ = paths
    write(log, calls_at(10))
    s = summary_of(paths)
    s.refresh()
    first = log.read_bytes().split(b"\n")[0] + b"\n"
    os.truncate(log, len(first))
    write(log, calls_at(30, start=T0 + 60, result="400"))
    s.refresh()
    assert totals(s) == (1, 30)


def test_a_log_rotated_in_place_is_read_from_scratch(paths):
    """Same inode, longer than before, another first line."""
    log, _ = paths
    write(log, calls_at(10))
    s = summary_of(paths)
    s.refresh()
    os.truncate(log, 0)
    write(log, calls_at(30, start=T0 + 7, result="400"))
    s.refresh()
    assert totals(s) == (0, 30)


def test_a_log_whose_first_line_was_rewritten_is_read_from_scratch(paths):
    log, _ = paths
    write(log, calls_at(10))
    s = summary_of(paths)
    s.refresh()
    lines = _lines(log)
    lines[0] = lines[0].replace(b'"Success"', b'"Failure"')  # same length, same inode
    log.write_bytes(b"".join(lines))
    s.refresh()
    assert totals(s) == (9, 1)


def _valid_index(paths):
    write(paths[0], calls_at(10))
    summary_of(paths).refresh()
    return paths[1].read_bytes()


@pytest.mark.parametrize("damage", [
    lambda good: b"garbage",
    lambda good: b"",
    lambda good: good[:len(good) // 2],
    lambda good: good[:10],
    lambda good: msgpack.packb({"v": 99, "gen": b"x"}) + good,
    lambda good: msgpack.packb({"v": 1, "gen": b"12345678"}) + msgpack.packb([1, 2]),
    lambda good: msgpack.packb({"v": 1, "gen": b"12345678"}) + msgpack.packb({"offset": "x"}),
    lambda good: good.replace(b"offset", b"offsex"),
    lambda good: msgpack.packb([1]),
], ids=["garbage", "empty", "half", "header", "version", "list", "bad-offset", "renamed-field",
        "not-a-map"])
def test_a_damaged_index_is_rebuilt(paths, damage):
    log, index = paths
    good = _valid_index(paths)
    index.write_bytes(damage(good))
    write(log, calls_at(4, start=T0 + 3000, result="400"))
    s = summary_of(paths)
    s.refresh()
    assert totals(s) == (10, 4)
    assert s.chain() == audit.verify(str(log))
    fresh = summary_of(paths)  # and what it saved is a good index again
    fresh.refresh()
    assert totals(fresh) == (10, 4)
    assert fresh._state.offset == os.path.getsize(log)


def test_an_unreadable_index_is_rebuilt(paths):
    """Here a directory where the index should be: it can be neither read
    nor replaced, and counting goes on in memory."""
    log, index = paths
    write(log, calls_at(6))
    index.mkdir()
    s = summary_of(paths)
    s.refresh()
    write(log, calls_at(2, start=T0 + 900, result="400"))
    s.refresh()
    assert totals(s) == (6, 2)
    assert not os.path.exists(str(index) + ".tmp")


def test_an_index_with_impossible_offsets_is_rebuilt(paths):
    """Well-formed, but pointing past the end of the log."""
    _valid_index(paths)
    s = summary_of(paths)
    s.refresh()
    s._state.offset = 10**9
    s._save()
    fresh = summary_of(paths)
    fresh.refresh()
    assert totals(fresh) == (10, 0)


def test_a_worker_whose_index_is_damaged_under_it_keeps_counting(paths):
    log, index = paths
    write(log, calls_at(10))
    s = summary_of(paths)
    s.refresh()
    index.write_bytes(b"\x00" * 50)
    write(log, calls_at(2, start=T0 + 900, result="400"))
    s.refresh()
    assert totals(s) == (10, 2)
    again = summary_of(paths)
    again.refresh()
    assert totals(again) == (10, 2)


def test_an_unsaveable_index_does_not_stop_counting(paths, monkeypatch):
    log, _ = paths
    write(log, calls_at(3))

    def full_disk(path, chunks, mode=0o600):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_summary.durable, "write_temp", full_disk)
    s = summary_of(paths)
    s.refresh()
    assert totals(s) == (3, 0)


# ---- several workers -------------------------------------------------------------------


def _worker(audit_path, index_path, start, done, out):
    # Tiny slices and blocks: the workers take the lock in turns many times.
    audit_summary.SLICE, audit_summary.BLOCK = 2048, 1024
    read = [0]
    count_block = UsageSummary._count_block

    def counting(self, data, cut):
        read[0] += data.count(b"\n", 1, cut)
        count_block(self, data, cut)

    UsageSummary._count_block = counting
    s = UsageSummary(audit_path, index_path)
    start.wait(60)
    while not done.is_set():
        s.refresh()
    s.refresh()
    counts = [s.hourly(key, T0 + 23 * HOUR, 24) for key in (None, "k1", "k2")]
    out.put(([(sum(c.successes for c in h), sum(c.failures for c in h)) for h in counts], read[0]))


def test_workers_refreshing_at_once_count_every_line_once(paths):
    log, index = paths
    write(log, calls_at(300, key_id="k1") + calls_at(100, start=T0 + 100, key_id="k2", result="403"))
    ctx = multiprocessing.get_context("spawn")
    start, done, out = ctx.Barrier(3), ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(str(log), str(index), start, done, out))
               for _ in range(2)]
    for w in workers:
        w.start()
    try:
        start.wait(60)  # all refresh from the same moment
        for i in range(20):  # the API keeps writing meanwhile
            time.sleep(0.005)
            write(log, calls_at(10, start=T0 + 20_000 + i * 10, key_id="k2")
                  + calls_at(5, start=T0 + 30_000 + i * 10, key_id="k1", result="400"))
        done.set()
        results = [out.get(timeout=60) for _ in workers]
    finally:
        done.set()
        for w in workers:
            w.join(60)
    expected = [(500, 200), (300, 100), (200, 100)]
    assert [counts for counts, _ in results] == [expected, expected]
    # Each line was read by one of them: the other took it from the index.
    assert sum(read for _, read in results) == len(_lines(log)) == 700
    assert all(w.exitcode == 0 for w in workers)
    s = summary_of(paths)
    s.refresh()
    assert [totals(s, key) for key in (None, "k1", "k2")] == expected


# ---- the chain -----------------------------------------------------------------------


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


def test_chain_agrees_with_verify_on_an_intact_log(paths):
    log, _ = paths
    write(log, calls_at(25) + [call(T0 + 9999, via="console"), call(T0 + 1, key_id="clé")])
    s = summary_of(paths)
    assert s.chain() == audit.verify(str(log)) == (27, None)
    write(log, calls_at(5, start=T0 + 50_000))
    assert s.chain() == audit.verify(str(log)) == (32, None)


@pytest.mark.parametrize("tamper", ["edit", "delete", "swap", "not-json", "json-array", "no-hash"])
def test_chain_agrees_with_verify_on_a_tampered_log(paths, tamper):
    log, _ = paths
    write(log, calls_at(12))
    lines = _lines(log)
    if tamper == "edit":
        lines[4] = lines[4].replace(b'"Success"', b'"Failure"')
    elif tamper == "delete":
        del lines[6]
    elif tamper == "swap":
        lines[2], lines[3] = lines[3], lines[2]
    elif tamper == "not-json":
        lines.insert(5, b"this is not json\n")
    elif tamper == "json-array":
        lines.insert(5, b"[1, 2]\n")  # verify itself raises TypeError here
    else:
        lines[7] = lines[7][:lines[7].index(b',"hash"')] + b"}\n"
    log.write_bytes(b"".join(lines))
    s = summary_of(paths)
    status = s.chain()
    if tamper == "json-array":
        assert status == (5, "line 6: not an audit entry")
    else:
        assert status == audit.verify(str(log))
        assert status.problem is not None


@pytest.mark.parametrize("tamper", ["delete", "shorten", "lengthen"])
def test_a_log_tampered_after_a_check_is_checked_again(paths, tamper):
    """A log no longer what was checked (shorter, or other bytes before
    the offset) is checked again from its start."""
    log, _ = paths
    write(log, calls_at(12))
    s = summary_of(paths)
    assert s.chain() == (12, None)
    lines = _lines(log)
    if tamper == "delete":
        del lines[3]
    elif tamper == "shorten":
        lines[5] = lines[5].replace(b'"Success"', b'"Succes"')
    else:
        lines[5] = lines[5].replace(b'"Success"', b'"Successes"')
    log.write_bytes(b"".join(lines))
    assert s.chain() == audit.verify(str(log))
    assert s.chain().problem is not None


def test_a_line_that_is_not_json_is_a_chain_problem_and_counting_goes_on(paths):
    log, _ = paths
    write(log, calls_at(10))
    lines = _lines(log)
    lines.insert(4, b"{torn line\n")
    log.write_bytes(b"".join(lines))
    s = summary_of(paths)
    s.refresh()
    assert totals(s) == (10, 0)
    assert s.chain() == audit.verify(str(log)) == (4, "line 5: not an audit entry")
    assert s.chain() == (4, "line 5: not an audit entry")  # and it stays where it broke


def test_the_chain_is_remembered_by_the_index(paths):
    log, _ = paths
    write(log, calls_at(10))
    assert summary_of(paths).chain() == (10, None)
    write(log, calls_at(3, start=T0 + 5000))
    s = summary_of(paths)
    assert s.chain() == (13, None)
    assert s._state.chain_lines == 13


def test_refresh_does_not_check_the_chain(paths, monkeypatch):
    """The chain check costs most: hourly() must never wait for it."""
    log, _ = paths
    write(log, calls_at(10))

    def no(*args):
        raise AssertionError("the chain was checked")

    monkeypatch.setattr(audit_summary.audit, "_canonical", no)
    s = summary_of(paths)
    s.refresh()
    assert totals(s) == (10, 0)


def test_chain_and_counting_work_in_slices(paths, monkeypatch):
    """Each hold of the lock reads at most SLICE bytes; the results are the same."""
    monkeypatch.setattr(audit_summary, "SLICE", 700)
    monkeypatch.setattr(audit_summary, "BLOCK", 512)
    log, _ = paths
    write(log, calls_at(40) + calls_at(10, start=T0 + 40 * 60, result="400"))
    s = summary_of(paths)
    s.refresh()
    assert totals(s) == (40, 10)
    assert s.chain() == audit.verify(str(log)) == (50, None)


def test_a_line_from_the_future_does_not_empty_the_charts(paths):
    """Pruning keeps KEEP_HOURS behind the newest line, but never behind
    now: a clock that jumped a year ahead for one line leaves the counts."""
    now = time.time()
    write(paths[0], calls_at(3, start=now - 600) + [call(now + 365 * 86400)] + calls_at(2, start=now - 60))
    summary = summary_of(paths)
    summary.refresh()
    assert totals(summary, "k1", now=now, hours=2) == (5, 0)
