"""The CLI with arguments generated from its own parser (kms.cli
build_parser: every subcommand, option and choice it declares, so a new
one is fuzzed without being listed here), in process: whatever the
arguments, the command ends with an exit status and, when it fails, a
message; never a traceback, and nothing created outside the temp
directories. `kms server` runs with the serving step stubbed: it must never
start a server here."""
import argparse
import os
from typing import Any, List

import pytest
from hypothesis import given, strategies as st

from fuzz_fixtures import fuzz_settings
from fuzz_values import hostile_strings, weighted
from kms import cli
from kms.server import RootCredentials, open_data_dir

NUMBERS = ["0", "-1", "1", "1024", "65536", "1e400", "NaN", "inf", "٥", "²", " 5", "0x10", "9" * 60, "1.5"]


def subcommands():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _value(action: argparse.Action, data_dir: str, missing: str, files: List[str]) -> st.SearchStrategy[str]:
    if action.choices:
        return weighted((6, st.sampled_from(sorted(action.choices))), (1, hostile_strings()))
    if "data_dir" == action.dest:
        return st.sampled_from([data_dir, data_dir, missing, files[0]])
    if action.dest in ("input", "output", "file"):
        return st.sampled_from(files + [missing + "/f", "", "."])
    if action.dest == "url":
        return st.sampled_from(["http://127.0.0.1:9", "not a url", "http://[::1", "ftp://127.0.0.1:9"])
    if action.type is not None and action.type is not str:
        return weighted((3, st.sampled_from(NUMBERS)), (1, hostile_strings()))
    return weighted((3, st.sampled_from(["root", "billing", "x", ""])), (1, hostile_strings()))


@st.composite
def argvs(draw, data_dir: str, missing: str, files: List[str]) -> List[str]:
    choices = subcommands()
    name = draw(st.sampled_from(sorted(choices)))
    argv: List[str] = [name]
    for action in choices[name]._actions:
        if isinstance(action, argparse._HelpAction) or not draw(st.integers(0, 3)):
            continue  # each option left out now and then (a required one too)
        if not action.option_strings:
            argv.append(draw(_value(action, data_dir, missing, files)))
        elif action.nargs == 0:
            argv.append(action.option_strings[0])
        else:
            argv += [action.option_strings[-1], draw(_value(action, data_dir, missing, files))]
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(st.sampled_from(["--bogus", "-", "--", "x"])))
    return argv


@pytest.fixture(scope="module")
def cli_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-cli")
    data_dir = str(root / "data")
    open_data_dir(data_dir, given=RootCredentials()).store.close()
    files = [str(root / "plain.txt"), str(root / "policy.json"), str(root / "out.bin")]
    with open(files[0], "wb") as f:
        f.write(b"fuzz-secret-file")
    with open(files[1], "w") as f:
        f.write('[{"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}]')
    return data_dir, str(root / "missing"), files


@fuzz_settings(0.7)
@given(data=st.data())
def test_every_subcommand_with_generated_arguments(cli_dirs, data, tmp_path_factory, monkeypatch, capsys):
    data_dir, missing, files = cli_dirs
    argv = data.draw(argvs(data_dir, missing, files))
    served: List[Any] = []
    monkeypatch.setattr("kms.server.serve", lambda *args, **kwargs: served.append(args) or 0)
    monkeypatch.delenv("KMS_TOKEN", raising=False)
    environ = dict(os.environ)
    cwd = os.getcwd()
    os.chdir(os.path.dirname(missing))
    try:
        try:
            status = cli.main(argv)
        except SystemExit as exc:  # argparse: usage errors, --help
            status = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out, (argv, err[-2000:])
    assert isinstance(status, int), argv
    if status:
        assert err.strip(), f"{argv} failed without saying why"
    assert not os.path.exists(missing), f"{argv} created {missing}"
    assert not os.path.exists(os.path.join(os.path.dirname(missing), "kms-data")), argv
