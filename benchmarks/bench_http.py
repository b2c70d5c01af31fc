"""HTTP benchmark: kms against an OpenBao dev server, same load, one run.

    .venv/bin/python benchmarks/bench_http.py [--duration 8] [--quick] [--profile]

Starts `kms server` (one worker per CPU) and, when the `bao` binary is on
PATH (pip install '.[bench]' provides it), `bao server -dev` with transit
enabled, both on 127.0.0.1. Each scenario is driven by wrk when installed,
else by the built-in asyncio load generator, with identical payloads for
both servers. Prints one table (requests/s, items/s, MB/s of plaintext, p50
and p99 latency, server CPU per request, kms/OpenBao ratio) and writes
.benchmarks/http-summary.json. Server CPU is the user+system time the
serving processes (kms: its workers, thread pools included; OpenBao: its
process tree) spent during the run, from /proc/<pid>/stat, divided by the
requests completed; --kms-http picks kms's HTTP front end (`kms server
--http`), so front ends can be compared in one sitting.
With --profile, py-spy samples one kms worker during each kms run and the
frames where it spends its time are printed and written to
.benchmarks/profile-<scenario>.txt (profiling slows that run; its figures
are marked).
"""
import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

import msgpack
import requests

TOKEN = "bench-root-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Proc:
    def __init__(self, cmd: List[str], env: Dict[str, str], log_path: str) -> None:
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def start_kms(workdir: str, http: str = "auto") -> Tuple[Proc, str]:
    port = free_port()
    env = dict(os.environ, KMS_ROOT_TOKEN=TOKEN)
    proc = Proc([sys.executable, "-m", "kms.cli", "server", "--data-dir", os.path.join(workdir, "kms-" + http),
                 "--port", str(port), "--http", http], env, os.path.join(workdir, f"kms-{http}.log"))
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health")
    return proc, url


def start_bao(workdir: str) -> Optional[Tuple[Proc, str]]:
    # The bench extra installs bao into the same environment as this Python.
    beside = os.path.join(os.path.dirname(sys.executable), "bao")
    binary = beside if os.access(beside, os.X_OK) else shutil.which("bao")
    if binary is None:
        return None
    port = free_port()
    proc = Proc([binary, "server", "-dev", f"-dev-root-token-id={TOKEN}",
                 f"-dev-listen-address=127.0.0.1:{port}"], dict(os.environ), os.path.join(workdir, "bao.log"))
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/v1/sys/health")
    r = requests.post(url + "/v1/sys/mounts/transit", json={"type": "transit"},
                      headers={"X-Vault-Token": TOKEN}, timeout=10)
    r.raise_for_status()
    return proc, url


def create_key(url: str) -> None:
    r = requests.post(url + "/v1/transit/keys/bench", json={}, headers={"X-Vault-Token": TOKEN}, timeout=10)
    r.raise_for_status()


# ---- load generators ---------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
%(headers)s
local f = io.open("%(body)s", "rb")
wrk.body = f:read("*all")
f:close()
-- No response() callback: wrk would hand every response to Lua, which on a
-- shared 2-core machine takes CPU from the servers being measured. Failed
-- requests are wrk's own counts (status >= 400, socket errors, timeouts).
done = function(summary, latency, requests)
  io.write(string.format("BENCH %%d %%d %%d %%d\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def request_headers(ctype: str, headers: Optional[Dict[str, str]]) -> Dict[str, str]:
    """Every request's headers: Vault's token by default, or the given ones."""
    return {**(headers if headers is not None else {"X-Vault-Token": TOKEN}), "Content-Type": ctype}


def run_wrk(url: str, body_path: str, ctype: str, connections: int, duration: float,
            workdir: str, headers: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    script = os.path.join(workdir, "bench.lua")
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in request_headers(ctype, headers).items())
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % {"headers": lines, "body": body_path})
    threads = max(1, min(2, connections))
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, int(duration))}s", "-s", script, url],
                         capture_output=True, text=True, timeout=duration + 60)
    match = re.search(r"BENCH (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no result: {out.stdout} {out.stderr}")
    total, bad, p50_us, p99_us = map(int, match.groups())
    return {"requests": total, "errors": bad, "seconds": duration,
            "p50_ms": p50_us / 1000, "p99_ms": p99_us / 1000}


async def _async_load(host: str, port: int, path: str, body: bytes, ctype: str,
                      connections: int, duration: float,
                      headers: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    fields = "".join(f"{k}: {v}\r\n" for k, v in request_headers(ctype, headers).items())
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{fields}"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    latencies: List[float] = []
    errors = [0]
    stop_at = time.perf_counter() + duration

    async def one() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status_line:
                errors[0] += 1
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"requests": len(latencies), "errors": errors[0], "seconds": duration,
            "p50_ms": pick(0.50), "p99_ms": pick(0.99)}


def run_load(url: str, path: str, body: bytes, ctype: str, connections: int, duration: float,
             workdir: str, headers: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    body_path = os.path.join(workdir, "body.bin")
    with open(body_path, "wb") as f:
        f.write(body)
    if shutil.which("wrk"):
        result = run_wrk(url + path, body_path, ctype, connections, duration, workdir, headers)
        result["generator"] = "wrk"
    else:
        host, port = url.split("//")[1].split(":")
        result = asyncio.run(_async_load(host, int(port), path, body, ctype, connections, duration, headers))
        result["generator"] = "asyncio"
    return result


# ---- profiling ---------------------------------------------------------------


def py_spy() -> Optional[str]:
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return beside if os.access(beside, os.X_OK) else shutil.which("py-spy")


def _children(pid: int) -> List[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def worker_pids(server_pid: int) -> List[int]:
    """The uvicorn worker processes under `kms server` (children of its
    supervisor, which is the server process's child or itself)."""
    found, todo = [], [server_pid]
    while todo:
        pid = todo.pop()
        kids = _children(pid)
        if not kids and pid != server_pid:
            found.append(pid)
        todo += kids
    return found


def process_tree(pid: int) -> List[int]:
    """pid and every process below it."""
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += _children(found[-1])
    return found


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: List[int]) -> float:
    """User + system CPU time of these processes, all their threads, so
    far (fields 14 and 15 of /proc/<pid>/stat, after the command name)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue  # gone: its time is lost, which only flatters nobody
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def serving_pids(server: str, pid: int) -> List[int]:
    return worker_pids(pid) if is_kms(server) else process_tree(pid)


def is_kms(server: str) -> bool:
    """"kms", or "kms --http X" for a second front end measured alongside."""
    return server.startswith("kms")


def start_profile(server_pid: int, seconds: float, out_path: str) -> Optional[subprocess.Popen]:
    binary, workers = py_spy(), worker_pids(server_pid)
    if binary is None or not workers:
        return None
    return subprocess.Popen([binary, "record", "-p", str(workers[0]), "-d", str(max(1, int(seconds))),
                             "-r", "250", "-f", "raw", "-o", out_path, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# Where a sampled frame belongs, by the first matching piece of its text.
CATEGORIES = [
    ("CoalescingTransport.write", "socket writes (send)"),  # write and write_now
    ("CoalescingTransport.flush", "socket writes (send)"),
    ("Runner.run", "event loop: epoll, socket reads (uvloop, in C)"),
    ("uvicorn/", "uvicorn HTTP protocol"),
    ("kms/api/http1.py", "kms HTTP protocol (http1, protocol)"),
    ("kms/api/protocol.py", "kms HTTP protocol (http1, protocol)"),
    ("kms/audit.py", "audit log"),
    ("kms/aead/", "native engine calls (base64, AES-GCM, readers)"),
    ("json/", "json module"),
    ("threading.py", "thread pool hand-off"),
    ("anyio/", "thread pool hand-off"),
    ("multiprocessing/", "uvicorn supervisor / idle"),
    ("kms/", "kms request handling (lane, auth, policy, envelopes)"),
]


def category_of(frame: str) -> str:
    return next((name for key, name in CATEGORIES if key in frame), "other")


def summarise_profile(raw_path: str, top: int = 12) -> Tuple[List[Tuple[float, str]], List[Tuple[float, str]]]:
    """From py-spy's raw format ("frame;frame;... count" per line): the
    frames a worker was in when sampled, and the same grouped by what they
    do, each as (share of samples, name), most first."""
    own: Dict[str, int] = {}
    total = 0
    with open(raw_path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():
                continue
            leaf = stack.split(";")[-1]
            own[leaf] = own.get(leaf, 0) + int(count)
            total += int(count)
    groups: Dict[str, int] = {}
    for frame, n in own.items():
        groups[category_of(frame)] = groups.get(category_of(frame), 0) + n
    def ranked(counts: Dict[str, int], limit: int) -> List[Tuple[float, str]]:
        return [(n / total, k) for k, n in sorted(counts.items(), key=lambda kv: -kv[1])[:limit]] if total else []
    return ranked(own, top), ranked(groups, len(groups))


# ---- scenarios ---------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def scenarios(quick: bool) -> List[Dict[str, Any]]:
    kib = os.urandom(1024)
    batch = {"batch_input": [{"plaintext": b64(os.urandom(1024))} for _ in range(100)]}
    out = [
        {"name": "encrypt 64 B", "path": "/v1/transit/encrypt/bench", "items": 1, "size": 64,
         "json": {"plaintext": b64(os.urandom(64))}, "connections": [16, 64]},
        {"name": "encrypt 1 KiB", "path": "/v1/transit/encrypt/bench", "items": 1, "size": 1024,
         "json": {"plaintext": b64(kib)}, "connections": [16, 64]},
        {"name": "encrypt 16 KiB", "path": "/v1/transit/encrypt/bench", "items": 1, "size": 16384,
         "json": {"plaintext": b64(os.urandom(16384))}, "connections": [16, 64]},
        {"name": "decrypt 1 KiB", "path": "/v1/transit/decrypt/bench", "items": 1, "size": 1024,
         "decrypt_of": kib, "connections": [16, 64]},
        {"name": "batch encrypt 100 x 1 KiB", "path": "/v1/transit/encrypt/bench", "items": 100,
         "size": 1024, "json": batch, "connections": [16]},
        {"name": "batch decrypt 100 x 1 KiB", "path": "/v1/transit/decrypt/bench", "items": 100,
         "size": 1024, "batch_of": batch, "connections": [16]},
        {"name": "batch rewrap 100 x 1 KiB", "path": "/v1/transit/rewrap/bench", "items": 100,
         "size": 1024, "batch_of": batch, "connections": [16]},
        {"name": "bulk decrypt 10,000 x 1 KiB", "path": "/v1/bulk/decrypt/bench", "items": 10_000,
         "size": 1024, "bulk_decrypt_of": [os.urandom(1024) for _ in range(10_000)],
         "connections": [4], "kms_only": True},
        {"name": "bulk encrypt 10,000 x 1 KiB", "path": "/v1/bulk/encrypt/bench", "items": 10_000,
         "size": 1024, "msgpack": {"items": [os.urandom(1024) for _ in range(10_000)]},
         "connections": [4], "kms_only": True},
        {"name": "bulk encrypt 16 x 1 MiB", "path": "/v1/bulk/encrypt/bench", "items": 16,
         "size": 1 << 20, "msgpack": {"items": [os.urandom(1 << 20) for _ in range(16)]},
         "connections": [4], "kms_only": True},
    ]
    if quick:
        for s in out:
            s["connections"] = s["connections"][:1]
    return out


def body_for(scenario: Dict[str, Any], url: str) -> Tuple[bytes, str]:
    if "msgpack" in scenario:
        return msgpack.packb(scenario["msgpack"], use_bin_type=True), "application/msgpack"
    headers = {"X-Vault-Token": TOKEN}
    if "batch_of" in scenario:  # the batch's ciphertexts, sealed by this server
        r = requests.post(url + "/v1/transit/encrypt/bench", json=scenario["batch_of"], headers=headers, timeout=30)
        r.raise_for_status()
        texts = [item["ciphertext"] for item in r.json()["data"]["batch_results"]]
        return json.dumps({"batch_input": [{"ciphertext": t} for t in texts]}).encode(), "application/json"
    if "bulk_decrypt_of" in scenario:
        r = requests.post(url + "/v1/bulk/encrypt/bench", timeout=60,
                          data=msgpack.packb({"items": scenario["bulk_decrypt_of"]}, use_bin_type=True),
                          headers={**headers, "Content-Type": "application/msgpack"})
        r.raise_for_status()
        sealed = msgpack.unpackb(r.content, raw=False)
        return (msgpack.packb({"items": sealed["ciphertexts"], "key_version": sealed["key_version"]},
                              use_bin_type=True), "application/msgpack")
    if "decrypt_of" in scenario:
        r = requests.post(url + "/v1/transit/encrypt/bench", json={"plaintext": b64(scenario["decrypt_of"])},
                          headers={"X-Vault-Token": TOKEN}, timeout=10)
        r.raise_for_status()
        return json.dumps({"ciphertext": r.json()["data"]["ciphertext"]}).encode(), "application/json"
    return json.dumps(scenario["json"]).encode(), "application/json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help="one connection count per scenario")
    parser.add_argument("--only", default="", help="run only scenarios whose name this regular expression finds (e.g. '^(en|de)crypt ')")
    parser.add_argument("--profile", action="store_true",
                        help="sample a kms worker with py-spy during each kms run (pip install py-spy)")
    parser.add_argument("--kms-http", default="auto",
                        help="kms server --http (its HTTP front end); several, comma-separated, "
                             "start one kms each (the first is \"kms\"), e.g. auto,uvicorn-httptools")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="kms-bench-")
    servers: Dict[str, Tuple[Proc, str]] = {}
    rows: List[Dict[str, Any]] = []
    try:
        for i, http in enumerate(args.kms_http.split(",")):
            servers["kms" if i == 0 else f"kms --http {http}"] = start_kms(workdir, http)
        bao = start_bao(workdir)
        if bao is None:
            print("bao not found: measuring kms alone (pip install '.[bench]' for OpenBao)", file=sys.stderr)
        else:
            servers["openbao"] = bao
        for _, url in servers.values():
            create_key(url)
        for scenario in (s for s in scenarios(args.quick) if re.search(args.only, s["name"])):
            for connections in scenario["connections"]:
                for server, (_, url) in servers.items():
                    if scenario.get("kms_only") and not is_kms(server):
                        continue
                    body, ctype = body_for(scenario, url)
                    profile = None
                    if args.profile and server == "kms":
                        raw_path = os.path.join(workdir, "profile.txt")
                        profile = start_profile(servers[server][0].proc.pid, args.duration - 1, raw_path)
                    pids = serving_pids(server, servers[server][0].proc.pid)
                    cpu_before = cpu_seconds(pids)
                    result = run_load(url, scenario["path"], body, ctype, connections, args.duration, workdir)
                    cpu_us = (cpu_seconds(pids) - cpu_before) * 1e6 / max(1, result["requests"])
                    if profile is not None:
                        profile.wait(30)
                        report_profile(scenario["name"], connections, raw_path)
                    rps = result["requests"] / result["seconds"]
                    rows.append({"scenario": scenario["name"], "server": server, "connections": connections,
                                 "requests_per_s": rps, "items_per_s": rps * scenario["items"],
                                 "mb_per_s": rps * scenario["items"] * scenario["size"] / 1e6,
                                 "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
                                 "cpu_us_per_request": cpu_us,
                                 "errors": result["errors"], "generator": result["generator"],
                                 "profiled": profile is not None})
                    print(f"{scenario['name']:32} {server:24} c={connections:<3} {rps:10.1f} req/s "
                          f"p99 {result['p99_ms']:.2f} ms cpu {cpu_us:.0f} us/req errors {result['errors']}", file=sys.stderr)
    finally:
        for proc, _ in servers.values():
            proc.stop()
    print_table(rows)
    os.makedirs(".benchmarks", exist_ok=True)
    with open(".benchmarks/http-summary.json", "w") as f:
        json.dump(rows, f, indent=1)
    return 0


def report_profile(name: str, connections: int, raw_path: str) -> None:
    if not os.path.exists(raw_path):
        return
    frames, groups = summarise_profile(raw_path)
    group_lines = [f"{share * 100:5.1f}%  {label}" for share, label in groups]
    frame_lines = [f"{share * 100:5.1f}%  {frame}" for share, frame in frames]
    slug = re.sub(r"[^a-z0-9]+", "-", f"{name} c{connections}".lower()).strip("-")
    os.makedirs(".benchmarks", exist_ok=True)
    with open(f".benchmarks/profile-{slug}.txt", "w") as f:
        f.write("by kind of work:\n" + "\n".join(group_lines) + "\n\ntop frames:\n" + "\n".join(frame_lines) + "\n")
    print(f"  where one kms worker spent its samples ({name}, c={connections}):", file=sys.stderr)
    for line in group_lines:
        print("    " + line, file=sys.stderr)
    os.remove(raw_path)


def print_table(rows: List[Dict[str, Any]]) -> None:
    index = {(r["scenario"], r["connections"], r["server"]): r for r in rows}
    print("| scenario | conns | server | requests/s | items/s | MB/s | p50 ms | p99 ms | CPU us/req | kms/OpenBao |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        other = index.get((r["scenario"], r["connections"], "openbao"))
        ratio = f"{r['items_per_s'] / other['items_per_s']:.2f}x" if is_kms(r["server"]) and other else ""
        errors = f" ({r['errors']} errors)" if r["errors"] else ""
        errors += " (profiled)" if r.get("profiled") else ""
        print(f"| {r['scenario']} | {r['connections']} | {r['server']}{errors} | {r['requests_per_s']:.0f} | "
              f"{r['items_per_s']:.0f} | {r['mb_per_s']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['cpu_us_per_request']:.0f} | {ratio} |")


if __name__ == "__main__":
    sys.exit(main())
