"""Readers for the shared test vectors (one opener, one parser per format).

The vectors live in ../shared/vectors beside the checkout (CI lays them out
the same way); KMS_VECTORS_DIR overrides that. Their provenance is in that
folder's README.
"""
import json
import os
import pathlib
from typing import Dict, Iterator, List, Optional

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def vectors_dir() -> pathlib.Path:
    override = os.environ.get("KMS_VECTORS_DIR")
    return pathlib.Path(override) if override else REPO.parent / "shared" / "vectors"


def open_vector_file(name: str) -> pathlib.Path:
    path = vectors_dir() / name
    if not path.is_file():
        pytest.skip(f"test vector file {name} not found in {vectors_dir()} "
                    "(expected ../shared/vectors beside the checkout, or set KMS_VECTORS_DIR)")
    return path


def load_wycheproof(name: str) -> List[Dict]:
    """Every test of a Wycheproof AEAD file, each with its group's sizes."""
    data = json.loads(open_vector_file(name).read_text())
    tests = []
    for group in data["testGroups"]:
        for test in group["tests"]:
            tests.append({**test, "keySize": group["keySize"], "ivSize": group["ivSize"],
                          "tagSize": group["tagSize"]})
    assert len(tests) == data["numberOfTests"], "the file's own test count disagrees"
    return tests


def load_nist_gcm(name: str) -> Iterator[Dict]:
    """Records of a CAVP GCM .rsp file. Each carries its section's IV and tag
    lengths (bits); 'fail' is True for a decrypt record marked FAIL."""
    section: Dict[str, int] = {}
    record: Optional[Dict] = None
    for raw in open_vector_file(name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            key, _, value = line[1:-1].partition("=")
            section[key.strip().lower()] = int(value)
            continue
        if line == "FAIL":
            assert record is not None
            record["fail"] = True
            continue
        key, _, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        if key == "count":
            if record is not None:
                yield record
            record = {"ivlen": section["ivlen"], "taglen": section["taglen"],
                      "ptlen": section["ptlen"], "aadlen": section["aadlen"], "fail": False}
        else:
            assert record is not None
            record[key] = bytes.fromhex(value)
    if record is not None:
        yield record
