"""The README's SDK quick start, run as written against a real server,
twice: a reader who runs it again must not meet AliasAlreadyExists."""
import os
import re
import time

from conftest import Server

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def quick_start_code() -> str:
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Quick start with the Tencent Cloud SDK", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the quick start has no python block"
    return match.group(1)


def test_the_quick_start_runs_twice_against_a_fresh_server(tmp_path, monkeypatch):
    srv = Server(str(tmp_path / "kms-data"), root_env={})  # credentials generated and saved
    srv.start()
    code = quick_start_code()
    assert "127.0.0.1:8300" in code and "kms-data/root-credentials.json" in code
    code = code.replace("127.0.0.1:8300", srv.endpoint)
    monkeypatch.chdir(tmp_path)
    for run in range(2):
        scope: dict = {}
        exec(compile(code, "README quick start", "exec"), scope)  # noqa: S102 - our own README
        if run == 0:
            first_key = scope["key_id"]
            time.sleep(1.1)  # a new second, so no request repeats a signature
    assert scope["key_id"] == first_key
    srv.kill()
