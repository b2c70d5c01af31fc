"""Known-answer tests: Wycheproof and NIST CAVP, on every backend.

Only 96-bit nonces and 128-bit tags are offered; every other record must be
refused with the specific size error, and is counted so a parser slip that
silently drops records fails the test.
"""
import pytest
from cryptography.exceptions import InvalidTag

from kms import aead, errors
from vector_files import load_nist_gcm, load_wycheproof


def test_wycheproof_aes_gcm(backend):
    counts = {"valid": 0, "invalid_tag": 0, "refused_nonce": 0, "refused_key": 0}
    failures = []
    for t in load_wycheproof("wycheproof_aes_gcm_test.json"):
        key, iv, aad = (bytes.fromhex(t[k]) for k in ("key", "iv", "aad"))
        msg, ct, tag = (bytes.fromhex(t[k]) for k in ("msg", "ct", "tag"))
        if t["keySize"] not in (128, 256):
            with pytest.raises(errors.InvalidKeySize):
                aead.AESGCM(key, backend=backend)
            counts["refused_key"] += 1
            continue
        box = aead.AESGCM(key, backend=backend)
        if t["ivSize"] != 96:
            with pytest.raises(errors.InvalidNonceSize):
                box.encrypt(iv, msg, aad)
            with pytest.raises(errors.InvalidNonceSize):
                box.decrypt(iv, ct + tag, aad)
            counts["refused_nonce"] += 1
            continue
        assert t["tagSize"] == 128
        if t["result"] == "valid":
            if box.encrypt(iv, msg, aad) != ct + tag or box.decrypt(iv, ct + tag, aad) != msg:
                failures.append(t["tcId"])
            counts["valid"] += 1
        else:
            assert t["result"] == "invalid"
            try:
                box.decrypt(iv, ct + tag, aad)
                failures.append(t["tcId"])
            except InvalidTag:
                pass
            counts["invalid_tag"] += 1
    assert failures == []
    # Expected totals from ../shared/vectors/README.md (128- and 256-bit keys).
    assert counts == {"valid": 79, "invalid_tag": 54, "refused_nonce": 80, "refused_key": 103}


def _nist_box(backend, record):
    return aead.AESGCM(record["key"], backend=backend)


def test_nist_gcm_encrypt_256(backend):
    done = refused_iv = refused_tag = 0
    failures = []
    for r in load_nist_gcm("gcmEncryptExtIV256.rsp"):
        if r["ivlen"] != 96:
            with pytest.raises(errors.InvalidNonceSize):
                _nist_box(backend, r).encrypt(r["iv"], r["pt"], r["aad"])
            refused_iv += 1
        elif r["taglen"] != 128:
            with pytest.raises(errors.InvalidTagSize):
                aead.AESGCM(r["key"], backend=backend, tag_length=r["taglen"] // 8)
            refused_tag += 1
        else:
            if _nist_box(backend, r).encrypt(r["iv"], r["pt"], r["aad"]) != r["ct"] + r["tag"]:
                failures.append(r)
            done += 1
    assert failures == []
    assert (done, refused_tag, refused_iv) == (375, 2250, 5250)


def test_nist_gcm_decrypt_256(backend):
    passed = failed_as_expected = refused_iv = refused_tag = 0
    failures = []
    for r in load_nist_gcm("gcmDecrypt256.rsp"):
        if r["ivlen"] != 96:
            with pytest.raises(errors.InvalidNonceSize):
                _nist_box(backend, r).decrypt(r["iv"], r["ct"] + r["tag"], r["aad"])
            refused_iv += 1
            continue
        if r["taglen"] != 128:
            with pytest.raises(errors.InvalidTagSize):
                aead.AESGCM(r["key"], backend=backend, tag_length=r["taglen"] // 8)
            refused_tag += 1
            continue
        box = _nist_box(backend, r)
        try:
            plain = box.decrypt(r["iv"], r["ct"] + r["tag"], r["aad"])
        except InvalidTag:
            if r["fail"]:
                failed_as_expected += 1
            else:
                failures.append(r)
            continue
        if r["fail"] or plain != r["pt"]:
            failures.append(r)
        else:
            passed += 1
    assert failures == []
    assert (passed, failed_as_expected) == (184, 191)
    assert (refused_tag, refused_iv) == (2250, 5250)


def test_nist_records_also_pass_as_batches(backend):
    """The 96-bit/128-bit decrypt records as one batch: the same verdicts."""
    records = [r for r in load_nist_gcm("gcmDecrypt256.rsp") if r["ivlen"] == 96 and r["taglen"] == 128]
    # Each record has its own key: group them by key (one batch per key).
    verdicts = {}
    by_key = {}
    for i, r in enumerate(records):
        by_key.setdefault(r["key"], []).append(i)
    for key, idx in by_key.items():
        box = aead.AESGCM(key, backend=backend)
        result = box.decrypt_batch([records[i]["iv"] for i in idx],
                                   [records[i]["ct"] + records[i]["tag"] for i in idx],
                                   [records[i]["aad"] for i in idx])
        for j, i in enumerate(idx):
            verdicts[i] = result[j]
    for i, r in enumerate(records):
        assert verdicts[i] == (None if r["fail"] else r["pt"]), i
