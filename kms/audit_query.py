"""The audit page's reader: entries newest first, filtered, a page at a time.

The log is read backwards in blocks from its end (or from the cursor the
previous page returned: the byte offset of its oldest line), without the
writers' lock: a last line still being appended has no newline yet and is
left out. A rare filter on a huge log must not make the page slow, so a
call reads at most about max_scan_bytes and then returns what it found and
a cursor to go on from. Lines that are not JSON objects are skipped.

Before a line is parsed, the JSON text of each exact filter value must occur
in it (AuditLog writes values in that one form), so a filter for one key
parses only that key's lines.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from kms.audit_summary import json_object, outcome

VIA_API = "api"  # how a filter names the lines the APIs write (they carry no "via")
FIELDS = ("time", "request_id", "account", "action", "key_id", "result", "latency_ms", "via", "target")
FIRST_BLOCK = 64 << 10  # a page of 50 lines is a few KiB: start small
MAX_BLOCK = 4 << 20  # then read more at a time, for filters that match rarely
# The time of a line with no escapes in it, where "time": can only be the
# key: a time filter then rejects it without parsing the line.
_TIME = re.compile(rb'"time":(-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)[,}]')


@dataclass(frozen=True)
class AuditFilter:
    account: str | None = None  # exact
    action: str | None = None  # exact
    key_id: str | None = None  # exact
    result: str | None = None  # "success", "failure" (not "started"), or an exact result
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    via: str | None = None  # exact; VIA_API: the lines without one (the APIs')


class AuditPage(NamedTuple):
    entries: list[dict[str, Any]]  # newest first; every field of FIELDS, None when absent
    next_before: int | None  # the cursor of the next (older) page; None at the start of the file
    scanned_all: bool  # the file was read back to its start


def newest_first(path: str, filter: AuditFilter, limit: int = 50,
                 before: int | None = None, max_scan_bytes: int = 64 << 20) -> AuditPage:
    """Up to `limit` entries matching `filter`, newest first, from the lines
    before byte offset `before` (the end of the file when None)."""
    if limit < 1 or max_scan_bytes < 1 or (before is not None and before < 0):
        raise ValueError("limit and max_scan_bytes must be positive, before not negative")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # nothing audited yet
        return AuditPage([], None, True)
    try:
        end = os.fstat(fd).st_size
        end = end if before is None else min(before, end)
        return _scan(fd, end, _matcher(filter), limit, max_scan_bytes)
    finally:
        os.close(fd)


def _scan(fd: int, end: int, keep: Callable[[bytes], dict[str, Any] | None], limit: int,
          max_scan_bytes: int) -> AuditPage:
    entries: list[dict[str, Any]] = []
    for offset, raw in _backwards(fd, end, max_scan_bytes):
        if raw is None:  # stopped inside one enormous line: go on before it next time
            return AuditPage(entries, offset, False)
        entry = keep(raw)
        if entry is not None:
            entries.append(entry)
        if offset == 0:
            break
        if len(entries) == limit or end - offset >= max_scan_bytes:
            return AuditPage(entries, offset, False)
    return AuditPage(entries, None, True)


def _backwards(fd: int, end: int, budget: int) -> Iterator[tuple[int, bytes | None]]:
    """(offset, line without its newline) of the complete lines before end,
    newest first. Bytes after the last newline (a line being written, or a
    cursor that is not at a line start) are skipped. If more than budget
    bytes are read without finding where a line starts, yields (where
    reading stopped, None) and ends."""
    pos, carry, block = end, b"", FIRST_BLOCK
    skipping = True  # until the first newline: a partial line
    while pos > 0:
        start = max(0, pos - block)
        data = os.pread(fd, pos - start, start) + carry  # ends with b"\n" unless skipping
        pieces = data.split(b"\n")
        tail = pieces.pop()
        if pieces:
            skipping = False
        off = start + len(data) - len(tail)
        carry = b""
        if start > 0 and pieces:  # the first piece may go on before start: next time
            carry = pieces[0] + b"\n"
            del pieces[0]
        for raw in reversed(pieces):
            off -= len(raw) + 1
            yield off, raw
        if start > 0 and (len(carry) > budget or (skipping and end - start > budget)):
            yield start, None
            return
        pos, block = start, min(block * 2, MAX_BLOCK)


def _matcher(f: AuditFilter) -> Callable[[bytes], dict[str, Any] | None]:
    """The entry of a line when it matches the filter, else None."""
    via = None if f.via == VIA_API else f.via
    exact = {name: value for name, value in
             (("account", f.account), ("action", f.action), ("key_id", f.key_id), ("via", via))
             if value is not None}
    if f.result is not None and f.result not in ("success", "failure"):
        exact["result"] = f.result
    needles = [json.dumps(value).encode() for value in exact.values()]

    def keep(raw: bytes) -> dict[str, Any] | None:
        if not all(needle in raw for needle in needles) or not _may_be_in_time(raw, f):
            return None
        entry = _entry(raw)
        if entry is None or any(entry[name] != value for name, value in exact.items()):
            return None
        if f.via == VIA_API and entry["via"] is not None:
            return None
        if not _in_time(entry["time"], f.since, f.until):
            return None
        if f.result in ("success", "failure") and outcome(entry["result"]) is not (f.result == "success"):
            return None
        return entry

    return keep


def _entry(raw: bytes) -> dict[str, Any] | None:
    parsed = json_object(raw)
    return None if parsed is None else {name: parsed.get(name) for name in FIELDS}


def _may_be_in_time(raw: bytes, f: AuditFilter) -> bool:
    """False when the line's time, found without parsing, is outside the filter's."""
    if (f.since is None and f.until is None) or b"\\" in raw:
        return True
    found = _TIME.search(raw)
    return found is None or _in_time(float(found[1]), f.since, f.until)


def _in_time(when: Any, since: float | None, until: float | None) -> bool:
    if since is None and until is None:
        return True
    if not isinstance(when, (int, float)) or isinstance(when, bool):
        return False
    return (since is None or when >= since) and (until is None or when < until)
