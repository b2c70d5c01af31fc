"""Console key-list benchmark: the /console/keys page over 10,000 keys.

    .venv/bin/python benchmarks/bench_console.py [--keys 10000] [--requests 60]

Makes a data directory holding --keys customer keys, starts `kms server`
(two workers) on 127.0.0.1, signs in to the console and fetches key-list
pages: the first page, the last page, a search, a sort by alias and a state
filter. For each it reports the server's own time per request (the
latency_ms the console writes in its audit line: the work and the
rendering, without the network) and the client's round trip, as medians.
The reference, measured in the same run on the same keys, is the Tencent
API's ListKeyDetail with Limit=20 through the official SDK: the ratio says
what the page costs over the bare listing. The target is a median server
time under 50 ms on a 2-core machine.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from benchmarks.bench_http import free_port, wait_http  # noqa: E402

ROOT_ID, ROOT_KEY = "AKIDbenchroot000000000000000000001", "bench-root-secret-key-0123456789"


def make_keys(data_dir: str, count: int) -> float:
    """count keys through the key service, as CreateKey makes them."""
    from kms.server import RootCredentials, open_data_dir

    runtime = open_data_dir(data_dir, given=RootCredentials(ROOT_ID, ROOT_KEY, "kms.bench-root-token-0123456789"))
    started = time.perf_counter()
    for i in range(count):
        record = runtime.keys.create_key(f"key-{i:05d}", f"benchmark key number {i}",
                                         tags={"shard": str(i % 16)})
        if i % 100 == 99:  # a few disabled keys for the state filter
            runtime.keys.disable(record["id"])
    runtime.store.close()
    return time.perf_counter() - started


def server_times(audit_path: str, request_ids: List[str]) -> List[float]:
    wanted = set(request_ids)
    times = []
    with open(audit_path, "rb") as f:
        for line in f:
            entry = json.loads(line)
            if entry.get("request_id") in wanted and entry.get("result") != "started":
                times.append(float(entry["latency_ms"]))
    return times


def fetch(session: requests.Session, url: str, n: int) -> Tuple[List[str], List[float]]:
    ids, rtts = [], []
    for _ in range(n):
        started = time.perf_counter()
        answer = session.get(url, timeout=30)
        rtts.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text[:300]
        ids.append(re.search(r"request <code>([0-9a-f-]{36})</code>", answer.text).group(1))
    return ids, rtts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kms-bench-console-")
    data_dir = os.path.join(work, "data")
    made = make_keys(data_dir, args.keys)
    print(f"made {args.keys:,} keys in {made:.1f} s")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    log = open(os.path.join(work, "server.log"), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "kms.cli", "server", "--data-dir", data_dir,
                             "--port", str(port), "--workers", "2"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/health")
        rows = run(base, data_dir, args)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
    print(f"\n{'page':<28}{'server p50 ms':>14}{'server p90':>12}{'client p50':>12}{'vs API':>9}")
    reference = rows["ListKeyDetail API (reference)"][0]
    for name, (server_p50, server_p90, client_p50) in rows.items():
        ratio = f"{server_p50 / reference:.2f}x" if "reference" not in name else "1.00x"
        print(f"{name:<28}{server_p50:>14.2f}{server_p90:>12.2f}{client_p50:>12.2f}{ratio:>9}")
    worst = max(v[0] for k, v in rows.items() if "reference" not in k)
    print(f"\nslowest console page median: {worst:.1f} ms (target < 50 ms)")
    return 0


def run(base: str, data_dir: str, args: argparse.Namespace) -> Dict[str, Tuple[float, float, float]]:
    session = requests.Session()
    answer = session.post(base + "/console/login", data={"SecretId": ROOT_ID, "SecretKey": ROOT_KEY}, timeout=30)
    assert answer.url.endswith("/console/keys"), answer.text[:300]
    pages = {"first page": "/console/keys",
             "last page": f"/console/keys?page={(args.keys + 19) // 20}",
             "search (alias)": "/console/keys?q=key-0421",
             "search (description)": "/console/keys?q=number+77",
             "sort by alias, asc": "/console/keys?sort=alias&order=asc",
             "filter state + tag": "/console/keys?state=Disabled&tag=shard%3D3"}
    rows: Dict[str, Tuple[float, float, float]] = {}
    audit = os.path.join(data_dir, "audit.log")
    for name, path in pages.items():
        fetch(session, base + path, 3)  # warm both workers
        ids, rtts = fetch(session, base + path, args.requests)
        time.sleep(0.2)
        served = sorted(server_times(audit, ids))
        rows[name] = (statistics.median(served), served[int(len(served) * 0.9) - 1], statistics.median(rtts))
    rows["ListKeyDetail API (reference)"] = api_reference(base, audit, args.requests)
    return rows


def api_reference(base: str, audit: str, n: int) -> Tuple[float, float, float]:
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.kms.v20190118 import kms_client

    profile = ClientProfile(httpProfile=HttpProfile(endpoint=base[len("http://"):], protocol="http"))
    client = kms_client.KmsClient(credential.Credential(ROOT_ID, ROOT_KEY), "ap-guangzhou", profile)
    ids, rtts = [], []
    for i in range(n + 3):
        started = time.perf_counter()
        answer = client.call_json("ListKeyDetail", {"Limit": 20})["Response"]
        if i >= 3:
            rtts.append((time.perf_counter() - started) * 1000)
            ids.append(answer["RequestId"])
    time.sleep(0.2)
    served = sorted(server_times(audit, ids))
    return statistics.median(served), served[int(len(served) * 0.9) - 1], statistics.median(rtts)


if __name__ == "__main__":
    sys.exit(main())
