"""The audit page's reader: filters, newest-first pages whose cursors give
every matching entry once, and the scan limit that keeps rare filters fast."""
import calendar
import json

import pytest

from kms import audit, audit_query
from kms.audit_query import AuditFilter, AuditPage, newest_first

from audit_files import write

T0 = calendar.timegm((2024, 12, 1, 0, 0, 0))
FIELDS = {"time", "request_id", "account", "action", "key_id", "result", "latency_ms", "via", "target"}


def mixed(n):
    """n calls of several accounts, actions, keys and results, one a second."""
    results = ["Success", "200", "400", audit.STARTED, "ResourceUnavailable.CmkDisabled", "204"]
    out = []
    for i in range(n):
        entry = {"time": T0 + i + 0.25, "request_id": f"r{i}", "account": f"AKID{i % 3}",
                 "action": ["Encrypt", "Decrypt", "encrypt"][i // 2 % 3], "key_id": f"k{i % 4}",
                 "result": results[i % len(results)], "latency_ms": None if i % 6 == 3 else 1.5}
        if i % 5 == 0:
            entry["via"] = "console"
        out.append(entry)
    return out


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "audit.log"
    write(path, mixed(120))
    return path


def ids(page):
    return [e["request_id"] for e in page.entries]


def every_page(path, chosen, limit, **kw):
    """All pages, following the cursors; the request ids in order."""
    found, before, pages = [], None, 0
    while True:
        page = newest_first(str(path), chosen, limit=limit, before=before, **kw)
        found += ids(page)
        pages += 1
        assert pages < 1000
        if page.next_before is None:
            assert page.scanned_all
            return found, pages
        assert page.next_before != before  # always progress
        before = page.next_before


def expected(entries, keep):
    return [e["request_id"] for e in reversed(entries) if keep(e)]


def test_no_filter_gives_the_newest_first_with_the_known_fields(log):
    page = newest_first(str(log), AuditFilter(), limit=5)
    assert ids(page) == ["r119", "r118", "r117", "r116", "r115"]
    assert all(set(e) == FIELDS for e in page.entries)
    assert "prev" not in page.entries[0] and "hash" not in page.entries[0]
    first = page.entries[0]
    assert first["time"] == T0 + 119.25 and first["key_id"] == "k3" and first["via"] is None
    assert page.entries[4]["via"] == "console"  # r115
    assert page.next_before is not None and not page.scanned_all


@pytest.mark.parametrize("chosen, keep", [
    (AuditFilter(account="AKID1"), lambda e: e["account"] == "AKID1"),
    (AuditFilter(action="encrypt"), lambda e: e["action"] == "encrypt"),
    (AuditFilter(key_id="k2"), lambda e: e["key_id"] == "k2"),
    (AuditFilter(result="success"), lambda e: e["result"] in ("Success", "200", "204")),
    (AuditFilter(result="failure"),
     lambda e: e["result"] in ("400", "ResourceUnavailable.CmkDisabled")),
    (AuditFilter(result="started"), lambda e: e["result"] == audit.STARTED),
    (AuditFilter(result="400"), lambda e: e["result"] == "400"),
    (AuditFilter(since=T0 + 30.25), lambda e: e["time"] >= T0 + 30.25),
    (AuditFilter(until=T0 + 30.25), lambda e: e["time"] < T0 + 30.25),
    (AuditFilter(since=T0 + 10, until=T0 + 20), lambda e: T0 + 10 <= e["time"] < T0 + 20),
    (AuditFilter(via="console"), lambda e: e.get("via") == "console"),
    (AuditFilter(account="AKID0", key_id="k0", result="failure"),
     lambda e: e["account"] == "AKID0" and e["key_id"] == "k0"
     and e["result"] in ("400", "ResourceUnavailable.CmkDisabled")),
    (AuditFilter(key_id="nope"), lambda e: False),
    (AuditFilter(key_id="k"), lambda e: False),  # exact, not a prefix
])
def test_filters(log, chosen, keep):
    want = expected(mixed(120), keep)
    page = newest_first(str(log), chosen, limit=200)
    assert ids(page) == want
    assert page.next_before is None and page.scanned_all


def test_intent_lines_are_shown(log):
    page = newest_first(str(log), AuditFilter(key_id="k3"), limit=200)
    assert audit.STARTED in [e["result"] for e in page.entries]


@pytest.mark.parametrize("limit", [1, 7, 10, 50])
@pytest.mark.parametrize("chosen, keep", [
    (AuditFilter(), lambda e: True),
    (AuditFilter(key_id="k1"), lambda e: e["key_id"] == "k1"),
    (AuditFilter(result="failure", via="console"),
     lambda e: e.get("via") == "console" and e["result"] in ("400", "ResourceUnavailable.CmkDisabled")),
])
def test_pages_give_every_match_once_newest_first(log, monkeypatch, limit, chosen, keep):
    monkeypatch.setattr(audit_query, "FIRST_BLOCK", 100)  # lines cross block boundaries
    monkeypatch.setattr(audit_query, "MAX_BLOCK", 700)
    want = expected(mixed(120), keep)
    found, pages = every_page(log, chosen, limit)
    assert found == want
    assert pages >= len(want) // limit


def test_the_cursor_is_the_oldest_returned_lines_offset(log):
    page = newest_first(str(log), AuditFilter(), limit=3)
    data = log.read_bytes()
    assert data[page.next_before - 1:page.next_before] == b"\n"
    assert json.loads(data[page.next_before:data.index(b"\n", page.next_before)])["request_id"] == "r117"
    last = newest_first(str(log), AuditFilter(), limit=3, before=data.index(b"\n") + 1)
    assert ids(last) == ["r0"] and last.next_before is None and last.scanned_all


def test_the_scan_stops_after_max_scan_bytes_with_a_cursor(log):
    size = log.stat().st_size
    page = newest_first(str(log), AuditFilter(key_id="nope"), max_scan_bytes=2000)
    assert page.entries == [] and not page.scanned_all
    assert page.next_before is not None and size - 2000 - 400 <= page.next_before <= size - 2000
    # Following the cursors finds a rare entry far back, exactly once.
    found, pages = every_page(log, AuditFilter(result="400", key_id="k0"), 50, max_scan_bytes=2000)
    assert found == expected(mixed(120), lambda e: e["result"] == "400" and e["key_id"] == "k0")
    assert size // (2000 + 400) <= pages <= size // 2000 + 1  # each page scans just over 2000 bytes


def test_an_enormous_line_does_not_stop_paging(tmp_path, monkeypatch):
    """Longer than max_scan_bytes: each page stops inside it and the next
    goes on before that point, until the line's start is passed."""
    monkeypatch.setattr(audit_query, "FIRST_BLOCK", 1000)
    monkeypatch.setattr(audit_query, "MAX_BLOCK", 1000)
    path = tmp_path / "audit.log"
    write(path, mixed(3))
    with open(path, "ab") as f:
        f.write(b"x" * 50_000 + b"\n")
    with open(path, "ab") as f:
        f.write(b"".join(_lines_of(tmp_path, mixed(5)[3:])))
    found, pages = every_page(path, AuditFilter(), 10, max_scan_bytes=5000)
    assert found == ["r4", "r3", "r2", "r1", "r0"]
    assert pages >= 50_000 // 6000


def _lines_of(tmp_path, entries):
    other = tmp_path / "other.log"
    write(other, entries)
    return other.read_bytes().splitlines(keepends=True)


def test_unparseable_lines_and_a_partial_last_line_are_skipped(tmp_path):
    path = tmp_path / "audit.log"
    write(path, mixed(4))
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(2, b"not json\n")
    lines.insert(1, b"[1, 2]\n")
    lines.insert(1, b"\n")
    path.write_bytes(b"".join(lines) + lines[-1][:30])  # a line still being written
    page = newest_first(str(path), AuditFilter(), limit=10)
    assert ids(page) == ["r3", "r2", "r1", "r0"]


def test_a_cursor_inside_a_line_skips_that_fragment(log):
    data = log.read_bytes()
    second = data.index(b"\n") + 1
    page = newest_first(str(log), AuditFilter(), before=second + 10)
    assert ids(page) == ["r0"]


def test_edges(tmp_path, log):
    assert newest_first(str(tmp_path / "missing.log"), AuditFilter()) == AuditPage([], None, True)
    (tmp_path / "empty.log").write_bytes(b"")
    assert newest_first(str(tmp_path / "empty.log"), AuditFilter()) == AuditPage([], None, True)
    assert newest_first(str(log), AuditFilter(), before=0) == AuditPage([], None, True)
    beyond = newest_first(str(log), AuditFilter(), limit=2, before=10**12)
    assert ids(beyond) == ["r119", "r118"]
    for bad in ({"limit": 0}, {"max_scan_bytes": 0}, {"before": -1}):
        with pytest.raises(ValueError):
            newest_first(str(log), AuditFilter(), **bad)


def test_values_written_with_escapes_are_matched(tmp_path):
    path = tmp_path / "audit.log"
    write(path, [dict(mixed(1)[0], key_id='clé "1"', account="a\\b"), mixed(2)[1]])
    page = newest_first(str(path), AuditFilter(key_id='clé "1"', account="a\\b"))
    assert [e["key_id"] for e in page.entries] == ['clé "1"']


def test_via_api_selects_the_lines_without_a_via(log):
    from kms.audit_query import VIA_API
    api = newest_first(str(log), AuditFilter(via=VIA_API), limit=1000).entries
    console = newest_first(str(log), AuditFilter(via="console"), limit=1000).entries
    everything = newest_first(str(log), AuditFilter(), limit=1000).entries
    assert api and console and all(e["via"] is None for e in api)
    assert len(api) + len(console) == len(everything)
