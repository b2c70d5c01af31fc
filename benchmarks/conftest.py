"""Collects every benchmark's timings and prints one table at the end, with
each row's ratio against its named reference measured in the same run.
Also written to .benchmarks/aead-summary.json."""
import json
import pathlib
from typing import Dict, List

import pytest

ROWS: List[Dict] = []


@pytest.fixture
def record():
    """record(benchmark_or_times, group=..., impl=..., reference=..., items=..., nbytes=...)"""

    def _record(source, **row):
        if hasattr(source, "stats"):
            if source.stats is None:  # benchmarks disabled
                return
            stats = source.stats.stats
            row["best_s"], row["median_s"] = stats.min, stats.median
        else:
            row["best_s"], row["median_s"] = source
        ROWS.append(row)

    return _record


def _table() -> List[str]:
    refs = {(r["group"], r["impl"]): r for r in ROWS}
    lines = [
        "| scenario | implementation | GB/s (best) | per item, us (best / median) | ratio vs reference (best / median) | reference |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in ROWS:
        per_item_best = r["best_s"] / r["items"] * 1e6
        per_item_median = r["median_s"] / r["items"] * 1e6
        gbps = r["nbytes"] * r["items"] / r["best_s"] / 1e9
        ref = refs.get((r["group"], r["reference"])) if r.get("reference") else None
        if ref is not None and ref is not r:
            ratio = f"{ref['best_s'] / r['best_s']:.2f}x / {ref['median_s'] / r['median_s']:.2f}x"
            ref_name = r["reference"]
        else:
            ratio, ref_name = "(reference)" if ref is r else "", ""
        r["gb_per_s"] = gbps
        lines.append(f"| {r['group']} | {r['impl']} | {gbps:.2f} | {per_item_best:.3f} / {per_item_median:.3f} | {ratio} | {ref_name} |")
    return lines


# The targets of the engine's issue: (label, scenario, implementation,
# reference implementation, minimum ratio of reference time to our time).
TARGETS = [
    ("vaes single encrypt 16 KiB >= 1.0x cryptography", "encrypt 1 x 16384 B", "vaes", "cryptography", 1.0),
    ("vaes single decrypt 16 KiB >= 1.0x cryptography", "decrypt 1 x 16384 B", "vaes", "cryptography", 1.0),
    ("vaes single encrypt 1 MiB >= 1.0x cryptography", "encrypt 1 x 1048576 B", "vaes", "cryptography", 1.0),
    ("vaes single decrypt 1 MiB >= 1.0x cryptography", "decrypt 1 x 1048576 B", "vaes", "cryptography", 1.0),
    ("aesni single encrypt 16 KiB >= 0.8x cryptography", "encrypt 1 x 16384 B", "aesni", "cryptography", 0.8),
    ("aesni single encrypt 1 MiB >= 0.8x cryptography", "encrypt 1 x 1048576 B", "aesni", "cryptography", 0.8),
    ("aesni single encrypt 16 KiB >= 0.8x OpenSSL without VAES", "encrypt 1 x 16384 B", "aesni vs cryptography, no VAES", "cryptography, no VAES", 0.8),
    ("aesni single encrypt 1 MiB >= 0.8x OpenSSL without VAES", "encrypt 1 x 1048576 B", "aesni vs cryptography, no VAES", "cryptography, no VAES", 0.8),
    # Issue 11: the 256-bit tier, forced on an AVX-512 CPU against the
    # 512-bit tier, and against the OpenSSL a CPU without AVX-512 runs.
    ("vaes256 single encrypt 16 KiB >= 0.8x vaes", "encrypt 1 x 16384 B", "vaes256", "vaes", 0.8),
    ("vaes256 single encrypt 1 MiB >= 0.8x vaes", "encrypt 1 x 1048576 B", "vaes256", "vaes", 0.8),
    ("vaes256 single encrypt 16 KiB >= 1.8x cryptography without AVX-512", "encrypt 1 x 16384 B",
     "vaes256 vs cryptography without AVX-512", "cryptography without AVX-512", 1.8),
    ("vaes256 single encrypt 1 MiB >= 1.8x cryptography without AVX-512", "encrypt 1 x 1048576 B",
     "vaes256 vs cryptography without AVX-512", "cryptography without AVX-512", 1.8),
    ("vaes batch 1000 x 1 KiB >= 3x python loop", "encrypt batch 1000 x 1024 B", "vaes", "python loop", 3.0),
    ("aesni batch 1000 x 1 KiB >= 3x python loop", "encrypt batch 1000 x 1024 B", "aesni", "python loop", 3.0),
    ("vaes batch 1000 x 64 B >= 8x python loop", "encrypt batch 1000 x 64 B", "vaes", "python loop", 8.0),
    ("aesni batch 1000 x 64 B >= 8x python loop", "encrypt batch 1000 x 64 B", "aesni", "python loop", 8.0),
]


def _targets() -> List[str]:
    rows = {(r["group"], r["impl"]): r for r in ROWS}
    lines = []
    for label, group, impl, ref, minimum in TARGETS:
        ours, theirs = rows.get((group, impl)), rows.get((group, ref))
        if ours is None or theirs is None:
            continue
        best = theirs["best_s"] / ours["best_s"]
        median = theirs["median_s"] / ours["median_s"]
        verdict = "met" if best >= minimum and median >= minimum else "NOT met"
        lines.append(f"| {label} | {best:.2f}x | {median:.2f}x | {verdict} |")
    if lines:
        lines = ["| target | best | median | |", "|---|---:|---:|---|"] + lines
    return lines


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    terminalreporter.section("kms benchmark summary (ratios: reference time / our time; >1 means faster)")
    for line in _table():
        terminalreporter.write_line(line)
    targets = _targets()
    if targets:
        terminalreporter.section("targets (met only when both the best and the median ratio reach it)")
        for line in targets:
            terminalreporter.write_line(line)
    out = pathlib.Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "aead-summary.json").write_text(json.dumps(ROWS, indent=1))
