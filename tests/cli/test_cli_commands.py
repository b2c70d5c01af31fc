"""Every `kms` subcommand, run as the operator runs it (a subprocess), with
bad arguments: a non-zero exit, a one-line error, never a traceback; and a
tool pointed at a missing data directory creates nothing. Then generated
arguments (Hypothesis) for every subcommand, in process: whatever the
arguments, the command ends with an exit status, never an exception."""
import argparse
import json
import os
import subprocess
import sys
from typing import List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms import envelope
from kms.cli import build_parser, main
from kms.server import RootCredentials, open_data_dir

MISSING = "missing-data-dir"  # replaced by a path that does not exist
DATA = "data-dir"  # replaced by an initialised data directory


def _subcommands() -> List[str]:
    """What `kms --help` lists."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "data")
    runtime = open_data_dir(path, given=RootCredentials())
    runtime.store.close()
    return path


def run(args: List[str], cwd: str, env_extra=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMS_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "kms.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def assert_clean_failure(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("kms"), done.stderr  # "kms: ..." or argparse's "kms CMD: error: ..."
    if not last.startswith(("kms:", "usage")) or "error:" not in last:
        assert len(done.stderr.strip().splitlines()) == 1 or "error:" in last, done.stderr
    assert fragment.lower() in done.stderr.lower(), done.stderr


def _plain_text_envelope(tmp_path) -> str:
    path = tmp_path / "plain.txt"
    path.write_text("not an envelope")
    return str(path)


def _zero_chunk_envelope(tmp_path) -> str:
    """A header naming chunk 0, as older versions wrote for --chunk-size 0."""
    import msgpack
    import struct

    header = msgpack.packb({"v": 1, "key": "k", "wrapped_key": "vault:v1:x", "chunk": 0,
                            "nonce_prefix": b"\0" * 8}, use_bin_type=True)
    path = tmp_path / "zero.kmsenc"
    path.write_bytes(envelope.MAGIC + struct.pack(">I", len(header)) + header)
    return str(path)


BAD = [
    # (arguments, a fragment of the error)
    ([], "required"),
    (["frobnicate"], "invalid choice"),
    (["info", "--bogus"], "unrecognized"),
    (["server", "--port", "0"], "from 1 to 65535"),
    (["server", "--port", "70000"], "from 1 to 65535"),
    (["server", "--port", "٥"], "not an integer"),
    (["server", "--port", "8_300"], "not an integer"),
    (["server", "--workers", "0"], "not an integer"),
    (["server", "--workers", "1e400"], "not an integer"),
    (["server", "--workers", "9" * 5000], "not an integer"),
    (["server", "--scheduler-period", "nan"], "not a number"),
    (["server", "--scheduler-period", "inf"], "not a number"),
    (["server", "--replay-slots", "-1"], "not an integer"),
    (["server", "--header-timeout", "0"], "not a number"),
    (["server", "--body-timeout", "-1"], "not a number"),
    (["server", "--body-min-rate", "0"], "not an integer"),
    (["server", "--max-connections", "0"], "not an integer"),
    (["server", "--keep-alive-timeout", "x"], "not an integer"),
    (["server", "--log-level", "loud"], "invalid choice"),
    (["server", "--allowed-host", "a,b"], "not a host name"),
    (["server", "--http", "spdy"], "invalid choice"),
    (["server", "--data-dir", "{file}"], "is not a directory"),
    (["store"], "required"),
    (["store", "frobnicate"], "invalid choice"),
    (["store", "check", "--data-dir", MISSING], "no data directory"),
    (["store", "repair", "--data-dir", MISSING], "no data directory"),
    (["audit", "verify", "--data-dir", MISSING], "no data directory"),
    (["accounts"], "required"),
    (["accounts", "create", "--data-dir", DATA], "required: name"),
    (["accounts", "create", "has space", "--service", "--data-dir", DATA], "valid key alias"),
    (["accounts", "create", "x", "--data-dir", MISSING], "no data directory"),
    (["accounts", "list", "--data-dir", MISSING], "no data directory"),
    (["accounts", "delete", "--data-dir", DATA], "required: SECRET_ID"),
    (["accounts", "delete", "AKIDnobody", "--data-dir", DATA], "no account"),
    (["accounts", "delete", "x", "extra", "--data-dir", DATA], "unrecognized"),
    (["policies"], "required"),
    (["policies", "put", "p", "--data-dir", DATA], "required: --file"),
    (["policies", "put", "p", "--file", "{nofile}", "--data-dir", DATA], "no such file"),
    (["policies", "put", "p", "--file", "{notjson}", "--data-dir", DATA], "is not JSON"),
    (["policies", "put", "p", "--file", "{badpolicy}", "--data-dir", DATA], "statement"),
    (["policies", "put", "bad name", "--file", "{goodpolicy}", "--data-dir", DATA], "policy names"),
    (["policies", "attach", "p", "--data-dir", DATA], "required: --account"),
    (["policies", "attach", "nopolicy", "--account", "AKIDx", "--data-dir", DATA], "no "),
    (["policies", "delete", "nopolicy", "--data-dir", DATA], "no policy"),
    (["policies", "list", "--data-dir", MISSING], "no data directory"),
    (["tokens"], "required"),
    (["tokens", "create", "--data-dir", DATA], "required: --account"),
    (["tokens", "create", "--account", "nobody", "--data-dir", DATA], "names 0 accounts"),
    (["tokens", "create", "--account", "root", "--ttl", "-1", "--data-dir", DATA], "not an integer"),
    (["tokens", "create", "--account", "root", "--ttl", "99999999999", "--data-dir", DATA], "not an integer"),
    (["tokens", "revoke", "--data-dir", DATA], "give an ACCESSOR"),
    (["tokens", "revoke", "no-such-accessor", "--data-dir", DATA], "accessor"),
    (["tokens", "list", "ACCESSOR", "--data-dir", DATA], "unrecognized"),
    (["tokens", "rotate-root", "--account", "root", "--data-dir", DATA], "unrecognized"),
    (["tokens", "list", "--data-dir", MISSING], "no data directory"),
    (["encrypt-file"], "required"),
    (["encrypt-file", "{file}", "out", "--key", "k", "--chunk-size", "0"], "from 1024"),
    (["encrypt-file", "{file}", "out", "--key", "k", "--chunk-size", "-1"], "from 1024"),
    (["encrypt-file", "{file}", "out", "--key", "k", "--chunk-size", "1023"], "from 1024"),
    (["encrypt-file", "{file}", "out", "--key", "k", "--chunk-size", str(1 << 31)], "from 1024"),
    (["encrypt-file", "{file}", "out", "--key", "k", "--url", "not a url"], "not an http(s) URL"),
    (["encrypt-file", "{file}", "out", "--key", "k", "--url", "http://h:99999"], "not an http(s) URL"),
    (["encrypt-file", "{file}", "out", "--key", "k"], "give --token"),
    (["encrypt-file", "{file}", "out", "--key", "k", "--token", "t", "--url", "http://127.0.0.1:9"],
     "refused"),
    (["decrypt-file", "{nofile}", "out"], "no such file"),
    (["decrypt-file", "{file}", "out"], "not a kms envelope"),
    (["decrypt-file", "{zero_chunk}", "out"], "damaged envelope header"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-files")
    (tmp / "not.json").write_text("{nope")
    (tmp / "bad-policy.json").write_text(json.dumps([{"effect": "maybe"}]))
    (tmp / "good-policy.json").write_text(json.dumps(
        [{"effect": "allow", "actions": ["kms:Encrypt"], "resources": ["key/x"]}]))
    return {"file": _plain_text_envelope(tmp), "nofile": str(tmp / "absent"),
            "notjson": str(tmp / "not.json"), "badpolicy": str(tmp / "bad-policy.json"),
            "goodpolicy": str(tmp / "good-policy.json"), "zero_chunk": _zero_chunk_envelope(tmp),
            "tmp": str(tmp)}


@pytest.mark.parametrize("args,fragment", BAD, ids=[" ".join(a)[:60] or "nothing" for a, _ in BAD])
def test_bad_arguments_fail_cleanly(args, fragment, data_dir, files, tmp_path):
    missing = str(tmp_path / "nowhere" / "data")
    argv = [missing if a == MISSING else data_dir if a == DATA else a.format(**files)
            for a in args]
    done = run(argv, cwd=str(tmp_path))
    assert_clean_failure(done, fragment)
    assert not os.path.exists(tmp_path / "nowhere"), "a tool never creates a data directory"
    assert not os.path.exists(tmp_path / "kms-data")
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path / "out.partial")


def test_every_subcommand_is_covered():
    covered = {args[0] for args, _ in BAD if args}
    assert set(_subcommands()) <= covered


def test_accounts_create_takes_its_options_before_or_after_the_name(data_dir, tmp_path):
    for argv in (["accounts", "create", "--service", "billing", "--data-dir", data_dir],
                 ["accounts", "create", "reports", "--service", "--data-dir", data_dir],
                 ["accounts", "create", "--data-dir", data_dir, "alice"]):
        done = run(argv, cwd=str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert set(json.loads(done.stdout)) == {"SecretId", "SecretKey"}
    listed = json.loads(run(["accounts", "list", "--data-dir", data_dir], cwd=str(tmp_path)).stdout)
    kinds = {a["Name"]: a for a in listed}
    assert {"billing", "reports", "alice"} <= set(kinds)
    # A name is one account, whatever its kind.
    for argv in (["accounts", "create", "billing", "--data-dir", data_dir],
                 ["accounts", "create", "--service", "alice", "--data-dir", data_dir]):
        assert_clean_failure(run(argv, cwd=str(tmp_path)), "exists")


def help_entries(text: str) -> dict:
    """--option -> its whole description, as argparse's help lays it out
    (an entry starts with "  -" and continues on deeper-indented lines)."""
    entries: dict = {}
    current = None
    for line in text.splitlines():
        if line.startswith("  -"):
            current = line.split()[0].rstrip(",")
            entries[current] = line
        elif current and line.startswith("    "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


def test_help_shows_defaults_for_every_subcommand(tmp_path):
    entries = help_entries(run(["server", "--help"], cwd=str(tmp_path)).stdout)
    for option, default in (("--port", "8300"), ("--header-timeout", "10.0"),
                            ("--body-timeout", "30.0"), ("--max-connections", "1000"),
                            ("--body-min-rate", "65536"), ("--keep-alive-timeout", "5"),
                            ("--log-level", "info"), ("--data-dir", "./kms-data")):
        assert f"(default: {default})" in entries[option], (option, entries[option])
    for argv in (["store", "--help"], ["accounts", "create", "--help"], ["tokens", "create", "--help"],
                 ["encrypt-file", "--help"]):
        assert "(default:" in run(argv, cwd=str(tmp_path)).stdout, argv


# ---- generated arguments, in process ----------------------------------------

_WORDS = st.sampled_from(["--data-dir", "--port", "--workers", "--ttl", "--account", "--file",
                          "--chunk-size", "--key", "--url", "--token", "--service", "--name",
                          "create", "list", "delete", "put", "attach", "revoke", "rotate-root",
                          "check", "repair", "verify", "root", "-1", "0", "1e400", "NaN", "٥",
                          "", " ", "--", "-", "x" * 300, "\x00", "../", "http://127.0.0.1:9"])
_ARGS = st.lists(st.one_of(_WORDS, st.text(max_size=12)), max_size=6)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(sorted(set(_subcommands()) - {"server"})), args=_ARGS)
def test_generated_arguments_end_in_an_exit_status(command, args, data_dir, tmp_path, capsys,
                                                   monkeypatch):
    """`server` is left out: valid arguments would start one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMS_TOKEN", raising=False)
    argv = [command, *args]
    if "--data-dir" in argv[:-1]:  # point every data directory at the one that exists or nowhere
        at = argv.index("--data-dir") + 1
        argv[at] = data_dir if argv[at] == "root" else str(tmp_path / "nowhere")
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors and --help
        status = exc.code if isinstance(exc.code, int) else 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert not os.path.exists(tmp_path / "nowhere") and not os.path.exists(tmp_path / "kms-data")
    if status:
        assert err.strip(), "a failure says why"
