"""Service-account tokens end to end on a real `lks up` with a Process pool: `kubectl create
token` (audience, duration, bound to a pod), what `kubectl run` stores (the kube-api-access
volume), legacy token Secrets filled by the token controller, an in-cluster client of the
official Python client inside a Process pod authenticating as its service account (RBAC applies
to it), and the managed cluster's OIDC issuer (`lks aks update --enable-oidc-issuer`)."""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import urllib.request
from pathlib import Path

import jwt
import pytest
import yaml
from kubernetes import client

from .conftest import LKS, lks_json, wait_until, with_process_pool

POOL = "tokens"
SELECTOR = {"kubernetes.azure.com/agentpool": POOL}
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    s = with_process_pool(tmp_path_factory.mktemp("lks-sa-tokens-home"), POOL)
    yield s
    s.stop()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _with_token(server: LKS, token: str, tmp_path: Path) -> Path:
    """A kubeconfig of the cluster whose only credential is `token`."""
    config = yaml.safe_load(server.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    path = tmp_path / f"kubeconfig-{os.urandom(3).hex()}"
    path.write_text(yaml.safe_dump(config))
    return path


def _whoami(server: LKS, token: str, tmp_path: Path):
    res = server.kubectl("auth", "whoami", "-o", "json", check=False, kubeconfig=_with_token(server, token, tmp_path))
    return json.loads(res.stdout)["status"]["userInfo"] if res.returncode == 0 else res.stderr


def test_kubectl_create_token(server: LKS, tmp_path: Path):
    token = server.kubectl("create", "token", "default", "--duration", "10m", "--audience", "x").stdout.strip()
    claims = _claims(token)
    assert claims["aud"] == ["x"] and claims["exp"] - claims["iat"] == 600
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert "error: You must be logged in to the server (Unauthorized)" in _whoami(server, token, tmp_path)  # not for the API

    token = server.kubectl("create", "token", "default").stdout.strip()
    user = _whoami(server, token, tmp_path)
    assert user["username"] == "system:serviceaccount:default:default"
    assert user["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]


def test_a_token_bound_to_a_pod(server: LKS, tmp_path: Path):
    server.kubectl("run", "holder", "--image=busybox", "--restart=Never", "--", "sleep", "3600")
    pod = json.loads(server.kubectl("get", "pod", "holder", "-o", "json").stdout)
    token = server.kubectl("create", "token", "default", "--bound-object-kind", "Pod",
                           "--bound-object-name", "holder").stdout.strip()
    assert _claims(token)["kubernetes.io"]["pod"] == {"name": "holder", "uid": pod["metadata"]["uid"]}
    user = _whoami(server, token, tmp_path)
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["holder"]
    server.kubectl("delete", "pod", "holder", "--grace-period=0", "--force", "--wait=true")
    assert "Unauthorized" in _whoami(server, token, tmp_path)
    res = server.kubectl("create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "holder",
                         check=False)
    assert 'pods "holder" not found' in res.stderr


def test_kubectl_run_pod_carries_the_token_volume(server: LKS):
    server.kubectl("run", "shape", "--image=busybox", "--restart=Never", "--", "sleep", "3600")
    pod = yaml.safe_load(server.kubectl("get", "pod", "shape", "-o", "yaml").stdout)
    spec = pod["spec"]
    assert spec["serviceAccount"] == spec["serviceAccountName"] == "default"
    (volume,) = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-")
    assert volume["projected"]["defaultMode"] == 420
    assert volume["projected"]["sources"][0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert spec["containers"][0]["volumeMounts"] == [{"mountPath": MOUNT, "name": volume["name"], "readOnly": True}]
    res = server.kubectl("run", "ghost", "--image=busybox", "--overrides",
                         json.dumps({"apiVersion": "v1", "spec": {"serviceAccountName": "ghost"}}), check=False)
    assert ('pods "ghost" is forbidden: error looking up service account default/ghost: '
            'serviceaccount "ghost" not found') in res.stderr
    server.kubectl("delete", "pod", "shape", "--grace-period=0", "--force")


def test_legacy_token_secrets(server: LKS, tmp_path: Path):
    server.kubectl("create", "serviceaccount", "legacy")
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
              "metadata": {"name": "legacy-token", "annotations": {"kubernetes.io/service-account.name": "legacy"}}}
    server.kubectl("apply", "-f", "-", input=json.dumps(secret))

    def filled() -> dict | None:
        obj = json.loads(server.kubectl("get", "secret", "legacy-token", "-o", "json").stdout)
        return obj if "token" in (obj.get("data") or {}) else None
    obj = wait_until(filled, what="the token Secret filled")
    account = json.loads(server.kubectl("get", "serviceaccount", "legacy", "-o", "json").stdout)
    assert obj["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == account["metadata"]["uid"]
    assert set(obj["data"]) == {"token", "ca.crt", "namespace"}
    token = server.kubectl("get", "secret", "legacy-token", "-o", "jsonpath={.data.token}").stdout
    token = base64.b64decode(token).decode()
    assert _claims(token)["iss"] == "kubernetes/serviceaccount" and "exp" not in _claims(token)
    assert _whoami(server, token, tmp_path)["username"] == "system:serviceaccount:default:legacy"
    server.kubectl("delete", "serviceaccount", "legacy")
    wait_until(lambda: server.kubectl("get", "secret", "legacy-token", check=False).returncode != 0,
               what="the token Secret gone with its account")
    assert "Unauthorized" in _whoami(server, token, tmp_path)


IN_CLUSTER = """
import json
from kubernetes import client, config
config.load_incluster_config()
api = client.ApiClient()
review = client.AuthenticationV1Api(api).create_self_subject_review(
    client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"))
token = open('{mount}/token').read()
print(json.dumps({{"user": review.status.user_info.username, "token": token}}))
try:
    client.CoreV1Api(api).list_namespaced_pod(open('{mount}/namespace').read())
    print(json.dumps({{"list": 200}}))
except client.ApiException as err:
    print(json.dumps({{"list": err.status}}))
"""


def _run_in_cluster(server: LKS, name: str) -> list[dict]:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"nodeSelector": SELECTOR, "restartPolicy": "Never", "containers": [{
               "name": "main", "image": "busybox",
               "command": [sys.executable, "-c", IN_CLUSTER.format(mount=MOUNT)]}]}}
    server.kubectl("apply", "-f", "-", input=json.dumps(pod))

    def finished() -> dict | None:
        obj = json.loads(server.kubectl("get", "pod", name, "-o", "json").stdout)
        return obj if obj["status"].get("phase") in ("Succeeded", "Failed") else None
    obj = wait_until(finished, timeout=60, what=f"pod {name} finished")
    logs = server.kubectl("logs", name).stdout
    assert obj["status"]["phase"] == "Succeeded", logs
    return [json.loads(line) for line in logs.splitlines() if line.startswith("{")]


@pytest.mark.skipif(os.geteuid() != 0, reason="the token is mounted at its path only in a mount namespace (root)")
def test_in_cluster_client_is_the_pods_service_account(server: LKS):
    out = _run_in_cluster(server, "incluster")
    assert out[0]["user"] == "system:serviceaccount:default:default"
    pod = json.loads(server.kubectl("get", "pod", "incluster", "-o", "json").stdout)
    claims = _claims(out[0]["token"])
    assert claims["kubernetes.io"]["pod"] == {"name": "incluster", "uid": pod["metadata"]["uid"]}
    assert claims["kubernetes.io"]["node"]["name"] == pod["spec"]["nodeName"]
    assert claims["kubernetes.io"]["warnafter"] - claims["iat"] == 3607  # kubelet's extended token
    can = server.kubectl("auth", "can-i", "list", "pods", "--as=system:serviceaccount:default:default",
                         check=False).stdout.strip()
    if can == "yes":  # no RBAC in this build: every authenticated user may
        assert out[1] == {"list": 200}
        return
    assert out[1] == {"list": 403}
    server.kubectl("create", "rolebinding", "default-view", "--clusterrole=view", "--serviceaccount=default:default")
    assert _run_in_cluster(server, "incluster2")[1] == {"list": 200}


def test_oidc_issuer(server: LKS):
    """`lks aks update --enable-oidc-issuer`: the managed cluster shows its issuerURL, whose
    discovery documents anyone may read, and whose keys verify the cluster's new tokens."""
    before = lks_json(server, "aks", "show", "-g", "demo", "-n", "demo")
    assert before["oidcIssuerProfile"] == {"enabled": False}
    shown = lks_json(server, "aks", "update", "-g", "demo", "-n", "demo", "--enable-oidc-issuer")
    issuer = shown["oidcIssuerProfile"]["issuerUrl"]
    config = yaml.safe_load(server.kubeconfig.read_text())
    endpoint = config["clusters"][0]["cluster"]["server"]
    assert issuer == endpoint + "/"  # https://127.0.0.1:<port>/clusters/<id>/
    ctx = ssl.create_default_context(cadata=base64.b64decode(
        config["clusters"][0]["cluster"]["certificate-authority-data"]).decode())

    def anonymous(url: str) -> dict:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
            return json.load(resp)
    discovery = anonymous(issuer + ".well-known/openid-configuration")
    assert discovery == {"issuer": issuer, "jwks_uri": issuer + "openid/v1/jwks",
                         "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                         "id_token_signing_alg_values_supported": ["RS256"]}
    keys = anonymous(discovery["jwks_uri"])["keys"]
    token = server.kubectl("create", "token", "default", "--audience", "api://AzureADTokenExchange").stdout.strip()
    key = next(k for k in keys if k["kid"] == jwt.get_unverified_header(token)["kid"])
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience="api://AzureADTokenExchange",
                        issuer=issuer)
    assert claims["sub"] == "system:serviceaccount:default:default"


def test_token_request_and_review_through_the_python_client(server: LKS):
    api = server.api_client()
    try:
        out = client.CoreV1Api(api).create_namespaced_service_account_token(
            "default", "default", client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=["vault"], expiration_seconds=1200)))
        assert out.spec.audiences == ["vault"] and out.spec.expiration_seconds == 1200
        auth = client.AuthenticationV1Api(api)
        review = auth.create_token_review(client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=out.status.token, audiences=["vault"])))
        assert review.status.authenticated is True and review.status.audiences == ["vault"]
        assert review.status.user.username == "system:serviceaccount:default:default"
        assert review.status.user.extra["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
        review = auth.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=out.status.token)))
        assert not review.status.authenticated
        assert review.status.error.startswith('[invalid bearer token, token audiences ["vault"] is invalid')
    finally:
        api.close()
