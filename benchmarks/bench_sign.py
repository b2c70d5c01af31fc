"""Signatures per second for each asymmetric key type, one run:

    .venv/bin/python benchmarks/bench_sign.py [--duration 3] [--connections 16]

Starts `kms server` and, when `bao` is on PATH (the bench extra), `bao server
-dev`, both on 127.0.0.1, and drives each with the same load (wrk when
installed, else bench_http's asyncio generator):
  - kms through transit (sign/ and verify/, every transit type),
  - kms through the Tencent API (SignByAsymmetricKey, VerifyByAsymmetricKey
    for RSA-2048 PSS, P-256, P-384 and SM2; one TC3-signed request, which
    the replay rules let a read-only action reuse within its 300 s),
  - OpenBao's transit for the types it has,
and prints them beside `cryptography` (and libcrypto for SM2) called
in-process on one core, the ceiling: the server has two cores, so a server
at 2x the in-process figure would be doing nothing but signing.
Writes .benchmarks/sign-summary.json.
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_http import TOKEN, Proc, free_port, run_load, start_bao, wait_http  # noqa: E402

from kms.api.tencent.signing import ALGORITHM, SERVICE, canonical_request, signature  # noqa: E402

SECRET_ID, SECRET_KEY = "AKIDbenchmarkroot00000000000000001", "bench-root-secret-key-0123456789abcdef"
MESSAGE = b"a message of the size a token or a document digest is" * 2
TRANSIT_TYPES = ["ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096"]
BAO_TYPES = TRANSIT_TYPES  # OpenBao 2.7 has each of them
TENCENT = [("ASYMMETRIC_SIGN_VERIFY_RSA_2048", "RSA_PSS_SHA_256", "rsa-2048"),
           ("ASYMMETRIC_SIGN_VERIFY_ECC", "ECC_P256_R1", "ecdsa-p256"),
           ("ASYMMETRIC_SIGN_VERIFY_ECDSA384", "ECC_P384_R1", "ecdsa-p384"),
           ("ASYMMETRIC_SIGN_VERIFY_SM2", "SM2DSA", "sm2")]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def start_kms(workdir: str) -> Tuple[Proc, str]:
    port = free_port()
    env = dict(os.environ, KMS_ROOT_TOKEN=TOKEN, KMS_ROOT_SECRET_ID=SECRET_ID, KMS_ROOT_SECRET_KEY=SECRET_KEY)
    proc = Proc([sys.executable, "-m", "kms.cli", "server", "--data-dir", os.path.join(workdir, "kms"),
                 "--port", str(port)], env, os.path.join(workdir, "kms.log"))
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health")
    return proc, url


# ---- the Tencent API ------------------------------------------------------------------


def tencent_headers(url: str, action: str, body: bytes) -> Dict[str, str]:
    """A TC3-HMAC-SHA256 signed request's headers, as the SDK makes them."""
    host = url.split("//")[1]
    timestamp = str(int(time.time()))
    date = datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%d")
    headers = {"content-type": "application/json", "host": host}
    canonical = canonical_request("POST", "", headers, "content-type;host", hashlib.sha256(body).hexdigest())
    sig = signature(SECRET_KEY, date, SERVICE, timestamp, canonical)
    return {"Authorization": f"{ALGORITHM} Credential={SECRET_ID}/{date}/{SERVICE}/tc3_request, "
                             f"SignedHeaders=content-type;host, Signature={sig}",
            "X-TC-Action": action, "X-TC-Version": "2019-01-18", "X-TC-Timestamp": timestamp}


def tencent(url: str, action: str, params: Dict[str, Any]) -> Tuple[Dict[str, Any], bytes, Dict[str, str]]:
    body = json.dumps(params).encode()
    headers = tencent_headers(url, action, body)
    answer = requests.post(url + "/", data=body, headers={**headers, "Content-Type": "application/json"},
                           timeout=60).json()["Response"]
    if "Error" in answer:
        raise RuntimeError(f"{action}: {answer['Error']}")
    return answer, body, headers


# ---- in-process ceilings ----------------------------------------------------------------


def ceiling(kind: str, seconds: float = 1.0) -> Tuple[float, float]:
    """(signatures/s, verifications/s) in this process, one core."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from kms.keys import asymmetric
    from kms.keys import material as materials

    private = materials.private_key(kind, materials.generate(kind))
    if kind == "sm2":
        public = private.public_key()
        sign: Callable[[], bytes] = lambda: private.sign(MESSAGE)  # noqa: E731
        sig = sign()
        verify: Callable[[], Any] = lambda: public.verify(sig, MESSAGE)  # noqa: E731
    elif kind == "ed25519":
        sig = private.sign(MESSAGE)
        sign, verify = (lambda: private.sign(MESSAGE)), (lambda: private.public_key().verify(sig, MESSAGE))
    else:
        chosen = hashes.SHA256()
        digest = asymmetric.digest_of(chosen, MESSAGE)
        pad = None if kind in asymmetric.CURVES else padding.PSS(padding.MGF1(chosen), 32)
        sign = lambda: asymmetric.sign_digest(private, digest, chosen, pad)  # noqa: E731
        sig = sign()
        public = private.public_key()
        verify = lambda: asymmetric.verify_digest(public, sig, digest, chosen, pad)  # noqa: E731
    return rate(sign, seconds), rate(verify, seconds)


def rate(call: Callable[[], Any], seconds: float) -> float:
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        call()
        count += 1
    return count / seconds


# ---- the run --------------------------------------------------------------------------


def transit_bodies(url: str, name: str, key_type: str) -> Tuple[bytes, bytes]:
    headers = {"X-Vault-Token": TOKEN}
    requests.post(f"{url}/v1/transit/keys/{name}", json={"type": key_type}, headers=headers,
                  timeout=120).raise_for_status()
    sign = json.dumps({"input": b64(MESSAGE)}).encode()
    signed = requests.post(f"{url}/v1/transit/sign/{name}", data=sign, headers=headers, timeout=60)
    signed.raise_for_status()
    verify = json.dumps({"input": b64(MESSAGE), "signature": signed.json()["data"]["signature"]}).encode()
    return sign, verify


def measure(url: str, path: str, body: bytes, args: argparse.Namespace, workdir: str,
            headers: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    result = run_load(url, path, body, "application/json", args.connections, args.duration, workdir, headers)
    result["per_s"] = result["requests"] / result["seconds"]
    if result["errors"]:
        raise RuntimeError(f"{path}: {result['errors']} failed requests")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    rows: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as workdir:
        kms_proc, kms_url = start_kms(workdir)
        bao = start_bao(workdir)
        try:
            for key_type in TRANSIT_TYPES:
                sign_body, verify_body = transit_bodies(kms_url, f"bench-{key_type}", key_type)
                row: Dict[str, Any] = {"type": key_type, "api": "transit"}
                row["kms_sign"] = measure(kms_url, f"/v1/transit/sign/bench-{key_type}", sign_body, args, workdir)
                row["kms_verify"] = measure(kms_url, f"/v1/transit/verify/bench-{key_type}", verify_body, args,
                                            workdir)
                if bao is not None and key_type in BAO_TYPES:
                    bao_url = bao[1]
                    sign_b, verify_b = transit_bodies(bao_url, f"bench-{key_type}", key_type)
                    row["bao_sign"] = measure(bao_url, f"/v1/transit/sign/bench-{key_type}", sign_b, args, workdir)
                    row["bao_verify"] = measure(bao_url, f"/v1/transit/verify/bench-{key_type}", verify_b, args,
                                                workdir)
                row["ceiling"] = ceiling(key_type)
                rows.append(row)
            for usage, algorithm, kind in TENCENT:
                created, _, _ = tencent(kms_url, "CreateKey", {"Alias": f"bench-tencent-{kind}", "KeyUsage": usage})
                params = {"KeyId": created["KeyId"], "Algorithm": algorithm, "Message": b64(MESSAGE)}
                signed, sign_body, sign_headers = tencent(kms_url, "SignByAsymmetricKey", params)
                verify_params = dict(params, SignatureValue=signed["Signature"])
                _, verify_body, verify_headers = tencent(kms_url, "VerifyByAsymmetricKey", verify_params)
                row = {"type": kind, "api": "tencent",
                       "kms_sign": measure(kms_url, "/", sign_body, args, workdir, sign_headers),
                       "kms_verify": measure(kms_url, "/", verify_body, args, workdir, verify_headers),
                       "ceiling": ceiling(kind)}
                rows.append(row)
        finally:
            kms_proc.stop()
            if bao is not None:
                bao[0].stop()
    print_table(rows, args)
    os.makedirs(".benchmarks", exist_ok=True)
    with open(".benchmarks/sign-summary.json", "w") as f:
        json.dump(rows, f, indent=1)
    return 0


def print_table(rows: List[Dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{args.connections} connections, {args.duration:g} s each; per second (p99 ms)\n")
    print("| type | API | kms sign | kms verify | OpenBao sign | OpenBao verify | kms/OpenBao sign | "
          "in-process sign (1 core) | in-process verify | kms sign / in-process |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        def cell(name: str) -> str:
            m = r.get(name)
            return f"{m['per_s']:,.0f} ({m['p99_ms']:.1f})" if m else "-"
        ratio = f"{r['kms_sign']['per_s'] / r['bao_sign']['per_s']:.2f}x" if "bao_sign" in r else "-"
        sign_ceiling, verify_ceiling = r["ceiling"]
        print(f"| {r['type']} | {r['api']} | {cell('kms_sign')} | {cell('kms_verify')} | {cell('bao_sign')} | "
              f"{cell('bao_verify')} | {ratio} | {sign_ceiling:,.0f} | {verify_ceiling:,.0f} | "
              f"{r['kms_sign']['per_s'] / sign_ceiling:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
