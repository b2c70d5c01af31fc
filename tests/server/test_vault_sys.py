"""Vault's sys/ and auth/token/ calls through hvac against a real kms
server, answered as OpenBao 2.7 answers them (shapes read off `bao server
-dev`): health and the status routes without a token, mounts, capabilities,
and tokens made, looked up and refused."""
import json

import hvac
import pytest
import requests
from conftest import ROOT_TOKEN, b64, server_fixture

from kms.cli import main

server = server_fixture("vault-sys", root_token=ROOT_TOKEN, workers=2)


@pytest.fixture(scope="module")
def vault(server):
    return hvac.Client(url=f"http://{server.endpoint}", token=ROOT_TOKEN)


def anonymous(server):
    return hvac.Client(url=f"http://{server.endpoint}")


def audit_actions(server):
    with open(f"{server.data_dir}/audit.log") as f:
        return [json.loads(line).get("action") for line in f if line.strip()]


def test_health_and_status_need_no_token(server):
    client = anonymous(server)
    health = client.sys.read_health_status(method="GET")
    assert (health["initialized"], health["sealed"], health["standby"]) == (True, False, False)
    assert isinstance(health["server_time_utc"], int) and health["version"]
    assert client.sys.is_initialized() is True
    assert client.sys.is_sealed() is False
    status = client.sys.read_seal_status()
    assert (status["sealed"], status["initialized"], status["t"], status["n"]) == (False, True, 1, 1)
    assert client.sys.read_leader_status()["ha_enabled"] is False
    assert requests.head(f"http://{server.endpoint}/v1/sys/health", timeout=30).status_code == 200
    custom = requests.get(f"http://{server.endpoint}/v1/sys/health?activecode=299", timeout=30)
    assert custom.status_code == 299 and custom.json()["sealed"] is False
    bad = requests.get(f"http://{server.endpoint}/v1/sys/health?activecode=abc", timeout=30)
    assert bad.status_code == 400 and bad.json()["errors"]
    assert "transit:sys_health" in audit_actions(server)  # audited like every call
    # One cluster id whichever worker answers (new connections spread over both).
    ids = {requests.get(f"http://{server.endpoint}/v1/sys/health", timeout=30).json()["cluster_id"]
           for _ in range(20)}
    assert len(ids) == 1


def test_init_is_done_already(server, vault):
    answer = requests.put(f"http://{server.endpoint}/v1/sys/init", json={"secret_shares": 1},
                          timeout=30)
    assert answer.status_code == 400 and answer.json() == {"errors": ["Vault is already initialized"]}


def test_mounts_list_transit(server, vault):
    mounts = vault.sys.list_mounted_secrets_engines()
    assert mounts["transit/"]["type"] == "transit" and mounts["data"]["transit/"]["type"] == "transit"
    assert mounts["sys/"]["type"] == "system"
    ui = requests.get(f"http://{server.endpoint}/v1/sys/internal/ui/mounts",
                      headers={"X-Vault-Token": ROOT_TOKEN}, timeout=30).json()["data"]
    assert ui["secret"]["transit/"]["type"] == "transit" and ui["auth"]["token/"]["type"] == "token"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already in use at transit/"):
        vault.sys.enable_secrets_engine("transit")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not supported"):
        vault.sys.enable_secrets_engine("transit", path="other-transit")
    with pytest.raises(hvac.exceptions.Forbidden):
        anonymous(server).sys.list_mounted_secrets_engines()
    assert vault.sys.read_mount_configuration("transit")["data"]["max_lease_ttl"] == 0
    assert requests.get(f"http://{server.endpoint}/v1/sys/mounts/transit", headers={"X-Vault-Token": ROOT_TOKEN},
                        timeout=30).json()["data"]["type"] == "transit"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="cannot unmount"):
        vault.sys.disable_secrets_engine("transit")


def test_tokens_created_looked_up_and_revoked(server, vault):
    made = vault.auth.token.create(ttl="1h")["auth"]
    assert made["client_token"] and made["lease_duration"] == 3600 and made["policies"] == ["root"]
    child = hvac.Client(url=f"http://{server.endpoint}", token=made["client_token"])
    assert child.is_authenticated()
    assert child.secrets.transit.generate_random_bytes(n_bytes=8)["data"]["random_bytes"]
    looked = vault.auth.token.lookup(made["client_token"])["data"]
    assert 3500 < looked["ttl"] <= 3600
    grandchild = child.auth.token.create(ttl="48h")["auth"]
    assert grandchild["lease_duration"] <= 3600  # never outlives the token that made it
    with pytest.raises(hvac.exceptions.InvalidRequest, match="lease is not renewable"):
        child.auth.token.renew_self()
    child.auth.token.revoke_self()
    assert not child.is_authenticated()
    with pytest.raises(hvac.exceptions.InvalidRequest, match="num_uses"):
        vault.auth.token.create(num_uses=3)


def test_sub_accounts_need_create_token_and_see_their_own_capabilities(server, vault, tmp_path, capsys):
    transit = vault.secrets.transit
    transit.create_key("sys-app-key")
    capsys.readouterr()
    assert main(["accounts", "create", "sys-app", "--data-dir", server.data_dir]) == 0
    secret_id = json.loads(capsys.readouterr().out)["SecretId"]
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps([{"effect": "allow", "actions": ["kms:Encrypt"],
                                   "resources": ["alias/sys-app-key"]}]))
    assert main(["policies", "put", "sys-app-encrypt", "--file", str(policy), "--data-dir", server.data_dir]) == 0
    assert main(["policies", "attach", "sys-app-encrypt", "--account", secret_id, "--data-dir",
                 server.data_dir]) == 0
    assert main(["tokens", "create", "--account", "sys-app", "--data-dir", server.data_dir]) == 0
    app = hvac.Client(url=f"http://{server.endpoint}", token=json.loads(capsys.readouterr().out)["token"])
    answer = app.sys.get_capabilities(paths=["transit/encrypt/sys-app-key", "transit/decrypt/sys-app-key",
                                             "transit/encrypt/other", "sys/mounts"], accessor=None)
    assert answer["data"] == {"transit/encrypt/sys-app-key": ["update"], "transit/decrypt/sys-app-key": ["deny"],
                              "transit/encrypt/other": ["deny"], "sys/mounts": ["deny"]}
    with pytest.raises(hvac.exceptions.Forbidden):
        app.auth.token.create()
    with pytest.raises(hvac.exceptions.Forbidden):  # another account's token
        app.auth.token.lookup(ROOT_TOKEN)
    assert app.secrets.transit.encrypt_data("sys-app-key", b64(b"x"))["data"]["ciphertext"]
    root = vault.sys.get_capabilities(paths=["transit/keys/anything"], accessor=None)["data"]
    assert root == {"transit/keys/anything": ["root"]}
