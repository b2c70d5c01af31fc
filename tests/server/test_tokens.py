"""Tokens against real ``kms server`` processes: listing by accessor,
revocation that holds in every worker at once, rotation of the root token,
and the account names tokens are issued by."""
import hashlib
import json
import os
import stat

import pytest
import requests

from conftest import ROOT_ID, ROOT_KEY, ROOT_TOKEN, Server
from kms.cli import main
from test_access_control import cli_json
from test_first_start import credentials_file, lookup_self, worker_pids


def new_account(capsys, server, name, service=False):
    argv = ["accounts", "create", name, "--data-dir", server.data_dir]
    return cli_json(capsys, *argv, *(["--service"] if service else []))["SecretId"]


def new_token(capsys, server, account, *extra):
    return cli_json(capsys, "tokens", "create", "--account", account, "--data-dir", server.data_dir, *extra)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    with Server(str(tmp_path_factory.mktemp("tokens") / "data"), workers=2) as srv:
        worker_pids(srv, 2)
        yield srv


def sessions_on_every_worker(server, workers=2):
    """(worker pid, keep-alive session) pairs, at least one per worker: each
    connection stays with the worker that accepted it, so each is a probe
    into one worker."""
    pinned = {}
    for _ in range(100):
        session = requests.Session()
        pid = session.get(f"http://{server.endpoint}/health", timeout=5).json()["worker"]
        pinned.setdefault(pid, []).append(session)
        if len(pinned) == workers and all(len(s) >= 2 for s in pinned.values()):
            break
    assert len(pinned) == workers, "could not reach every worker"
    return [(pid, session) for pid, sessions in pinned.items() for session in sessions]


def probe(session, server, token):
    return session.get(f"http://{server.endpoint}/v1/auth/token/lookup-self",
                       headers={"X-Vault-Token": token}, timeout=10).status_code


# ---- list -------------------------------------------------------------------


def test_list_names_tokens_by_accessor_and_never_shows_them(two_workers, capsys):
    server = two_workers
    secret_id = new_account(capsys, server, "lister")
    first = new_token(capsys, server, "lister")
    second = new_token(capsys, server, secret_id, "--ttl", "3600")
    listed = cli_json(capsys, "tokens", "list", "--account", "lister", "--data-dir", server.data_dir)
    assert [t["accessor"] for t in listed] == [first["accessor"], second["accessor"]]
    for entry in listed:
        assert set(entry) == {"accessor", "account", "name", "created", "expires"}
        assert entry["account"] == secret_id and entry["name"] == "lister"
    assert listed[0]["expires"] == 0 and listed[1]["expires"] == listed[1]["created"] + 3600
    everything = json.dumps(cli_json(capsys, "tokens", "list", "--data-dir", server.data_dir))
    assert first["accessor"] in everything and ROOT_ID in everything
    for token in (first["token"], second["token"], ROOT_TOKEN):
        assert token not in everything
        assert hashlib.sha256(token.encode()).hexdigest() not in everything


# ---- revoke -----------------------------------------------------------------


def test_a_revoked_token_is_refused_by_every_worker_from_the_next_request(two_workers, capsys):
    server = two_workers
    new_account(capsys, server, "revoked-app")
    doomed = new_token(capsys, server, "revoked-app")
    kept = new_token(capsys, server, "revoked-app")
    pinned = sessions_on_every_worker(server)
    assert all(probe(session, server, doomed["token"]) == 200 for _, session in pinned)
    assert cli_json(capsys, "tokens", "revoke", doomed["accessor"],
                    "--data-dir", server.data_dir) == {"revoked": [doomed["accessor"]]}
    for pid, session in pinned:
        for _ in range(20):
            assert probe(session, server, doomed["token"]) == 403, f"worker {pid} still accepts it"
    # New connections, wherever they land, and the bulk and transit routes too.
    for _ in range(100):
        assert lookup_self(server, doomed["token"]) == 403
    r = requests.post(f"http://{server.endpoint}/v1/transit/random/8",
                      headers={"X-Vault-Token": doomed["token"]}, timeout=10)
    assert r.status_code == 403
    assert lookup_self(server, kept["token"]) == 200, "revocation is of one token only"
    listed = cli_json(capsys, "tokens", "list", "--account", "revoked-app", "--data-dir", server.data_dir)
    assert [t["accessor"] for t in listed] == [kept["accessor"]]
    # Unknown (or already revoked) accessors are an error, not a silent no-op.
    assert main(["tokens", "revoke", doomed["accessor"], "--data-dir", server.data_dir]) == 2
    assert main(["tokens", "revoke", "--data-dir", server.data_dir]) == 2


def test_revoking_an_accounts_tokens_leaves_the_others(two_workers, capsys):
    server = two_workers
    new_account(capsys, server, "all-revoked")
    tokens = [new_token(capsys, server, "all-revoked") for _ in range(3)]
    other = new_token(capsys, server, "root")
    # An accessor of another account is not revoked under --account.
    assert main(["tokens", "revoke", other["accessor"], "--account", "all-revoked",
                 "--data-dir", server.data_dir]) == 2
    revoked = cli_json(capsys, "tokens", "revoke", "--account", "all-revoked", "--data-dir", server.data_dir)
    assert sorted(revoked["revoked"]) == sorted(t["accessor"] for t in tokens)
    pinned = sessions_on_every_worker(server)
    for _, session in pinned:
        assert all(probe(session, server, t["token"]) == 403 for t in tokens)
        assert probe(session, server, other["token"]) == 200
        assert probe(session, server, ROOT_TOKEN) == 200


def test_token_service_revoke_ends_the_presented_token(two_workers, capsys):
    from kms.server import open_data_dir

    server = two_workers
    issued = new_token(capsys, server, "root")
    pinned = sessions_on_every_worker(server)
    runtime = open_data_dir(server.data_dir, initialise=False)
    try:
        tokens = runtime.tokens
        assert tokens.revoke(issued["token"]) is True
        assert tokens.revoke(issued["token"]) is False  # gone already
        assert tokens.revoke("kms.never-issued-token-0000000") is False
    finally:
        runtime.store.close()
    for _, session in pinned:
        assert probe(session, server, issued["token"]) == 403
        assert probe(session, server, ROOT_TOKEN) == 200


def test_revoke_self_ends_the_presented_token_in_every_worker(two_workers, capsys):
    server = two_workers
    issued = new_token(capsys, server, "root")
    pinned = sessions_on_every_worker(server)
    r = requests.post(f"http://{server.endpoint}/v1/auth/token/revoke-self",
                      headers={"X-Vault-Token": issued["token"]}, timeout=10)
    assert r.status_code == 204, r.text
    for _, session in pinned:
        assert probe(session, server, issued["token"]) == 403
        assert probe(session, server, ROOT_TOKEN) == 200


def test_deleting_an_account_takes_its_tokens(two_workers, capsys):
    server = two_workers
    secret_id = new_account(capsys, server, "short-lived")
    issued = new_token(capsys, server, "short-lived")
    assert main(["accounts", "delete", secret_id, "--data-dir", server.data_dir]) == 0
    assert lookup_self(server, issued["token"]) == 403
    listed = json.dumps(cli_json(capsys, "tokens", "list", "--data-dir", server.data_dir))
    assert issued["accessor"] not in listed


# ---- rotate-root ------------------------------------------------------------


def test_rotate_root_replaces_every_root_token_and_rewrites_the_file(tmp_path, capsys):
    data = str(tmp_path / "data")
    # The pair is given, so the file holds only the generated token.
    with Server(data, workers=2,
                root_env={"KMS_ROOT_SECRET_ID": ROOT_ID, "KMS_ROOT_SECRET_KEY": ROOT_KEY}) as server:
        worker_pids(server, 2)
        first = credentials_file(data)["Token"]
        second = new_token(capsys, server, "root")["token"]
        new_account(capsys, server, "survivor")
        survivor = new_token(capsys, server, "survivor")["token"]
        pinned = sessions_on_every_worker(server)
        rotated = cli_json(capsys, "tokens", "rotate-root", "--data-dir", data)
        assert credentials_file(data) == {"Token": rotated["token"]}
        for _, session in pinned:
            assert probe(session, server, first) == 403
            assert probe(session, server, second) == 403
            assert probe(session, server, rotated["token"]) == 200
            assert probe(session, server, survivor) == 200
        root_tokens = cli_json(capsys, "tokens", "list", "--account", "root", "--data-dir", data)
        assert [t["accessor"] for t in root_tokens] == [rotated["accessor"]]


def test_rotate_root_keeps_the_rest_of_the_file_and_writes_none_that_was_not_there(tmp_path, capsys):
    data = str(tmp_path / "data")
    with Server(data, root_env={}) as server:
        saved = credentials_file(data)
        rotated = cli_json(capsys, "tokens", "rotate-root", "--data-dir", data)
        assert credentials_file(data) == {**saved, "Token": rotated["token"]}
        assert stat.S_IMODE(os.stat(os.path.join(data, "root-credentials.json")).st_mode) == 0o600
        assert lookup_self(server, rotated["token"]) == 200
        assert lookup_self(server, saved["Token"]) == 403
        os.unlink(os.path.join(data, "root-credentials.json"))
        again = cli_json(capsys, "tokens", "rotate-root", "--data-dir", data)
        assert not os.path.exists(os.path.join(data, "root-credentials.json"))
        assert lookup_self(server, again["token"]) == 200


# ---- the accounts tokens are issued to --------------------------------------


def test_account_names_are_unique_and_service_names_are_aliases(two_workers, capsys):
    server = two_workers
    new_account(capsys, server, "only-once")
    assert main(["accounts", "create", "only-once", "--data-dir", server.data_dir]) == 2
    assert "an account named 'only-once' exists" in capsys.readouterr().err
    assert main(["accounts", "create", "only-once", "--service", "--data-dir", server.data_dir]) == 2
    assert main(["accounts", "create", "root", "--data-dir", server.data_dir]) == 2
    for bad in ("has space", "_leading-underscore", "x" * 61, "dots.not.allowed"):
        assert main(["accounts", "create", bad, "--service", "--data-dir", server.data_dir]) == 2
        assert "valid key alias" in capsys.readouterr().err
    new_account(capsys, server, "svc_ok-1", service=True)
    names = [a["Name"] for a in cli_json(capsys, "accounts", "list", "--data-dir", server.data_dir)]
    assert names.count("only-once") == 1 and "svc_ok-1" in names
    # So a name always picks one account for a token.
    assert new_token(capsys, server, "only-once")["token"]


def test_a_restart_does_not_bring_back_revoked_root_tokens(tmp_path, capsys):
    data = str(tmp_path / "data")
    given = {"KMS_ROOT_SECRET_ID": ROOT_ID, "KMS_ROOT_SECRET_KEY": ROOT_KEY, "KMS_ROOT_TOKEN": ROOT_TOKEN}
    with Server(data, root_env=given) as server:
        revoked = cli_json(capsys, "tokens", "revoke", "--account", "root", "--data-dir", data)
        assert len(revoked["revoked"]) == 1
        assert lookup_self(server, ROOT_TOKEN) == 403
    # KMS_ROOT_TOKEN is still in the deployment's environment: it only ever
    # seeds a first start, never a directory whose root tokens were revoked.
    with Server(data, root_env=given) as again:
        assert lookup_self(again, ROOT_TOKEN) == 403
        assert "the root account holds no live token" in again.log()
        assert not os.path.exists(os.path.join(data, "root-credentials.json"))
        rotated = cli_json(capsys, "tokens", "rotate-root", "--data-dir", data)
        assert lookup_self(again, rotated["token"]) == 200
