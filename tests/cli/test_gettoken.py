"""`lks get-token` (`lks.cli.commands.gettoken`): the form each login sends, kubelogin's
environment variables, the ExecCredential, and the token cache."""

from __future__ import annotations

import json
import time

import pytest

from lks.cli.commands import gettoken
from lks.cli.main import _parser

SERVER = "6dae42f8-4368-4678-94ff-3960e28e3630"


@pytest.fixture
def sent(monkeypatch):
    calls: list[tuple[str, dict]] = []

    def request(url, form, ctx):
        calls.append((url, dict(form)))
        return f"token-{len(calls)}", int(time.time()) + 3599

    monkeypatch.setattr(gettoken, "_request", request)
    return calls


def args(tmp_path, *extra: str):
    return _parser().parse_args(["get-token", "--server-id", SERVER, "--tenant-id", "t", "--authority-host",
                                 "https://lks.example/", "--token-cache-dir", str(tmp_path), *extra])


def test_spn_from_kubelogin_variables_and_cache(tmp_path, sent):
    env = {"AAD_SERVICE_PRINCIPAL_CLIENT_ID": "app", "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET": "s3cret"}
    cred = gettoken.get_token(args(tmp_path, "--login", "spn", "--client-id", "ignored"), env)
    assert sent == [("https://lks.example/t/oauth2/v2.0/token", {
        "client_id": "app", "client_secret": "s3cret", "grant_type": "client_credentials",
        "scope": f"{SERVER}/.default"})]
    assert cred["kind"] == "ExecCredential" and cred["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert cred["status"]["token"] == "token-1" and cred["status"]["expirationTimestamp"].endswith("Z")
    again = gettoken.get_token(args(tmp_path, "--login", "spn"), env)
    assert again["status"]["token"] == "token-1" and len(sent) == 1  # from the cache
    (cached,) = tmp_path.glob("lks-*.json")
    assert oct(cached.stat().st_mode & 0o777) == "0o600" and "s3cret" not in cached.read_text()
    gettoken.get_token(args(tmp_path, "--login", "spn"), {**env, "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET": "other"})
    assert len(sent) == 2  # another credential: another entry


def test_workload_identity(tmp_path, sent):
    token_file = tmp_path / "token"
    token_file.write_text("assertion\n")
    env = {"AAD_LOGIN_METHOD": "workloadidentity", "AZURE_CLIENT_ID": "app",
           "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
           "KUBERNETES_EXEC_INFO": json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "spec": {}})}
    cred = gettoken.get_token(args(tmp_path), env)
    assert sent[0][1]["client_assertion"] == "assertion"
    assert sent[0][1]["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert cred["apiVersion"] == "client.authentication.k8s.io/v1"


@pytest.mark.parametrize(("extra", "env", "words"), [
    (("--login", "spn"), {}, "client ID is required"),
    (("--login", "devicecode"), {}, "login method devicecode is not available"),
    (("--login", "workloadidentity"), {"AZURE_CLIENT_ID": "a", "AZURE_FEDERATED_TOKEN_FILE": "/nonexistent"},
     "cannot read the federated token file"),
])
def test_errors(tmp_path, sent, extra, env, words):
    with pytest.raises(gettoken.LoginError) as err:
        gettoken.get_token(args(tmp_path, *extra), env)
    assert words in str(err.value) and not sent
