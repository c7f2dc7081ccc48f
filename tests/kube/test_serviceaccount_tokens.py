"""Service-account tokens in a hosted cluster served by the real HTTP layer: TokenRequest
(defaults, validation, bound objects), the token authenticator (issuer, audience, expiry, bound
pod and service account still there), TokenReview and legacy Secret tokens."""

from __future__ import annotations

import asyncio
import base64

import jwt
import orjson
import pytest

from lks import store
from lks.clock import ManualClock
from lks.controlplanes import _PREFIX, ControlPlanes
from lks.nodes.podtokens import PodTokens

from .conftest import AUTH

SA = "/api/v1/namespaces/default/serviceaccounts"
REVIEW = "/apis/authentication.k8s.io/v1/tokenreviews"
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def url(path: str) -> str:
    return f"/clusters/c1{path}"


async def post(client, path, body, headers=AUTH):
    resp = await client.post(url(path), data=orjson.dumps(body), headers={**headers, "Content-Type": "application/json"})
    return resp.status, await resp.json()


async def account(client, name="robot"):
    status, obj = await post(client, SA, {"metadata": {"name": name}})
    assert status == 201, obj
    return obj


async def token(client, name="robot", **spec):
    status, obj = await post(client, f"{SA}/{name}/token", {"apiVersion": "authentication.k8s.io/v1",
                                                             "kind": "TokenRequest", "spec": spec})
    assert status == 201, obj
    return obj


async def who(client, tok):
    """The user a token stands for, as the API server sees it (None: 401)."""
    status, obj = await post(client, WHOAMI, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                             headers={"Authorization": f"Bearer {tok}"})
    if status == 401:
        return None
    assert status == 201, obj
    return obj["status"]["userInfo"]


def claims(tok):
    return jwt.decode(tok, options={"verify_signature": False})


async def test_token_request_defaults_and_claims(client, cluster):
    sa = await account(client)
    out = await token(client)
    assert out["kind"] == "TokenRequest"
    assert out["metadata"]["name"] == "robot" and out["metadata"]["namespace"] == "default"
    assert out["spec"] == {"audiences": ["https://kubernetes.default.svc.cluster.local"], "expirationSeconds": 3600}
    tok = out["status"]["token"]
    header = jwt.get_unverified_header(tok)
    assert header == {"alg": "RS256", "kid": cluster.token_issuer.key.kid}
    c = claims(tok)
    assert list(c) == ["aud", "exp", "iat", "iss", "jti", "kubernetes.io", "nbf", "sub"]
    assert c["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert c["sub"] == "system:serviceaccount:default:robot"
    assert c["exp"] - c["iat"] == 3600 and c["nbf"] == c["iat"]
    assert c["kubernetes.io"] == {"namespace": "default",
                                  "serviceaccount": {"name": "robot", "uid": sa["metadata"]["uid"]}}
    user = await who(client, tok)
    assert user == {"username": "system:serviceaccount:default:robot", "uid": sa["metadata"]["uid"],
                    "groups": ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"],
                    "extra": {"authentication.kubernetes.io/credential-id": [f"JTI={c['jti']}"]}}


@pytest.mark.parametrize("seconds, message", [
    pytest.param(60, "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes", id="short"),
    pytest.param(2**32 + 1, "spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger "
                            "than 2^32 seconds", id="long"),
])
async def test_token_request_lifetime_is_validated(client, seconds, message):
    await account(client)
    status, obj = await post(client, f"{SA}/robot/token", {"spec": {"expirationSeconds": seconds}})
    assert status == 422 and obj["reason"] == "Invalid"
    assert obj["message"] == f'TokenRequest.authentication.k8s.io "" is invalid: {message}'


async def test_token_request_for_a_missing_account_is_404(client):
    status, obj = await post(client, f"{SA}/ghost/token", {"spec": {}})
    assert status == 404 and obj["message"] == 'serviceaccounts "ghost" not found'


async def test_a_token_bound_to_a_pod_dies_with_the_pod(client, cluster):
    await account(client)
    status, pod = await post(client, "/api/v1/namespaces/default/pods", {
        "metadata": {"name": "p"}, "spec": {"serviceAccountName": "robot", "automountServiceAccountToken": False,
                                            "containers": [{"name": "c", "image": "busybox"}]}})
    assert status == 201, pod
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": pod["metadata"]["uid"]}
    out = await token(client, boundObjectRef=ref, audiences=["x", "https://kubernetes.default.svc.cluster.local"])
    assert out["spec"]["boundObjectRef"] == ref
    tok = out["status"]["token"]
    assert claims(tok)["kubernetes.io"]["pod"] == {"name": "p", "uid": pod["metadata"]["uid"]}
    user = await who(client, tok)
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["p"]
    assert user["extra"]["authentication.kubernetes.io/pod-uid"] == [pod["metadata"]["uid"]]
    # a wrong uid is a conflict, another account's pod a bad request
    status, obj = await post(client, f"{SA}/robot/token", {"spec": {"boundObjectRef": {**ref, "uid": "nope"}}})
    assert status == 409 and "the UID in the bound object reference (nope) does not match" in obj["message"]
    await account(client, "other")
    status, obj = await post(client, f"{SA}/other/token", {"spec": {"boundObjectRef": ref}})
    assert status == 400
    assert obj["message"] == 'cannot bind token for serviceaccount "other" to pod running with different serviceaccount name.'
    resp = await client.delete(url("/api/v1/namespaces/default/pods/p?gracePeriodSeconds=0"), headers=AUTH)
    assert resp.status == 200
    assert await who(client, tok) is None
    status, obj = await post(client, REVIEW, {"spec": {"token": tok}})
    assert status == 201 and obj["status"] == {"user": {}, "error": "[invalid bearer token, service account token has been invalidated]"}


async def test_expiry_audience_and_account_are_checked(client, cluster):
    await account(client)
    tok = (await token(client, expirationSeconds=600))["status"]["token"]
    assert await who(client, tok) is not None
    await cluster.clock.advance(600 + 61)
    assert await who(client, tok) is None
    status, obj = await post(client, REVIEW, {"spec": {"token": tok}})
    assert obj["status"]["error"] == "[invalid bearer token, service account token has expired]"
    # another audience: not for the API server
    other = (await token(client, audiences=["vault"]))["status"]["token"]
    assert await who(client, other) is None
    status, obj = await post(client, REVIEW, {"spec": {"token": other, "audiences": ["vault"]}})
    assert obj["status"]["authenticated"] is True and obj["status"]["audiences"] == ["vault"]
    assert obj["status"]["user"]["username"] == "system:serviceaccount:default:robot"
    status, obj = await post(client, REVIEW, {"spec": {"token": other}})
    assert obj["status"]["error"] == ('[invalid bearer token, token audiences ["vault"] is invalid for the target '
                                      'audiences ["https://kubernetes.default.svc.cluster.local"]]')
    # the account goes (and comes back with another uid): its tokens stop working
    good = (await token(client))["status"]["token"]
    resp = await client.delete(url(f"{SA}/robot"), headers=AUTH)
    assert resp.status == 200
    assert await who(client, good) is None
    await account(client)
    status, obj = await post(client, REVIEW, {"spec": {"token": good}})
    assert obj["status"]["error"].startswith("[invalid bearer token, service account UID (")


async def test_token_review_of_other_tokens(client):
    status, obj = await post(client, REVIEW, {"spec": {"token": "test-token"}})
    assert status == 201 and obj["status"]["authenticated"] is True
    assert obj["status"]["user"]["username"] == "clusterAdmin"
    assert obj["status"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    status, obj = await post(client, REVIEW, {"spec": {"token": "garbage"}})
    assert obj["status"] == {"user": {}, "error": "invalid bearer token"}
    status, obj = await post(client, REVIEW, {"spec": {}})
    assert status == 400 and obj["message"] == "token is required for TokenReview in authentication"
    forged = jwt.encode({"iss": "https://kubernetes.default.svc.cluster.local", "sub": "system:serviceaccount:default:x"},
                        "secret-that-is-long-enough-for-hs256", algorithm="HS256")
    status, obj = await post(client, REVIEW, {"spec": {"token": forged}})
    assert obj["status"]["error"] == "[invalid bearer token, go-jose/go-jose: error in cryptographic primitive]"


async def test_legacy_secret_tokens(client, cluster):
    sa = await account(client)
    tok = cluster.token_issuer.legacy(sa, "robot-token")
    assert claims(tok) == {
        "iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": "default",
        "kubernetes.io/serviceaccount/secret.name": "robot-token",
        "kubernetes.io/serviceaccount/service-account.name": "robot",
        "kubernetes.io/serviceaccount/service-account.uid": sa["metadata"]["uid"],
        "sub": "system:serviceaccount:default:robot"}
    assert await who(client, tok) is None  # no Secret holds it
    status, obj = await post(client, "/api/v1/namespaces/default/secrets", {
        "metadata": {"name": "robot-token"}, "data": {"token": base64.b64encode(tok.encode()).decode()}})
    assert status == 201, obj
    assert (await who(client, tok))["username"] == "system:serviceaccount:default:robot"
    await client.delete(url("/api/v1/namespaces/default/secrets/robot-token"), headers=AUTH)
    assert await who(client, tok) is None


# -- the ServiceAccount admission plugin ------------------------------------------------------

PODS = "/api/v1/namespaces/default/pods"


def pod(name, **spec):
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


async def test_a_pod_runs_as_default_with_the_token_volume(client):
    status, obj = await post(client, PODS, pod("p", initContainers=[{"name": "i", "image": "busybox"}]))
    assert status == 201, obj
    spec = obj["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    (volume,) = spec["volumes"]
    name = volume["name"]
    assert name.startswith("kube-api-access-") and len(name) == len("kube-api-access-") + 5
    assert volume["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}
    mount = {"name": name, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert spec["initContainers"][0]["volumeMounts"] == [mount]


async def test_a_pod_needs_its_service_account(client):
    status, obj = await post(client, PODS, pod("p", serviceAccountName="ghost"))
    assert status == 403 and obj["reason"] == "Forbidden"
    assert obj["message"] == ('pods "p" is forbidden: error looking up service account default/ghost: '
                              'serviceaccount "ghost" not found')
    status, obj = await post(client, PODS, pod("q", serviceAccount="ghost"))  # the deprecated alias names it too
    assert status == 403 and "default/ghost" in obj["message"]


async def test_automount_opt_outs_and_own_mounts(client):
    status, _ = await post(client, SA, {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False,
                                        "imagePullSecrets": [{"name": "registry"}]})
    assert status == 201
    status, obj = await post(client, PODS, pod("a", serviceAccountName="quiet"))
    assert status == 201 and "volumes" not in obj["spec"]
    assert obj["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    status, obj = await post(client, PODS, pod("b", serviceAccountName="quiet", automountServiceAccountToken=True))
    assert status == 201 and obj["spec"]["volumes"][0]["name"].startswith("kube-api-access-")
    status, obj = await post(client, PODS, pod("c", automountServiceAccountToken=False))
    assert status == 201 and "volumes" not in obj["spec"]
    own = {"name": "mine", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    status, obj = await post(client, PODS, {"metadata": {"name": "d"}, "spec": {
        "volumes": [{"name": "mine", "emptyDir": {}}],
        "containers": [{"name": "c", "image": "busybox", "volumeMounts": [own]}]}})
    assert status == 201, obj
    assert [v["name"] for v in obj["spec"]["volumes"]] == ["mine"]
    assert obj["spec"]["containers"][0]["volumeMounts"] == [own]


# -- the node agents' pod tokens ------------------------------------------------------------

async def test_pod_tokens_are_bound_and_refreshed_at_80_percent(client, cluster, tmp_path):
    status, obj = await post(client, PODS, pod("p", nodeName="node-1"))  # its kubelet asks, as node-1
    assert status == 201, obj
    (volume,) = obj["spec"]["volumes"]
    source = volume["projected"]["sources"][0]["serviceAccountToken"]
    tokens = PodTokens(cluster)
    first = await tokens.token(obj, source)
    c = claims(first)
    assert c["kubernetes.io"]["pod"] == {"name": "p", "uid": obj["metadata"]["uid"]}
    assert c["kubernetes.io"]["warnafter"] - c["iat"] == 3607 and c["exp"] - c["iat"] == 365 * 24 * 3600
    (tmp_path / volume["name"]).mkdir()
    path = tmp_path / volume["name"] / "token"
    path.write_text(first)
    path.chmod(0o600)
    tokens.keep_fresh(obj, {volume["name"]: tmp_path / volume["name"]})
    await asyncio.sleep(0)
    await cluster.clock.advance(3607 * 0.8 - 5)
    assert path.read_text() == first
    await cluster.clock.advance(10)
    for _ in range(100):  # the refresher writes once its sleep ends
        if path.read_text() != first:
            break
        await asyncio.sleep(0.01)
    fresh = path.read_text()
    assert fresh != first and claims(fresh)["iat"] > c["iat"] and oct(path.stat().st_mode & 0o777) == "0o600"
    assert (await who(client, fresh))["username"] == "system:serviceaccount:default:default"
    await tokens.close()


# -- OIDC discovery ---------------------------------------------------------------------------

async def test_discovery_documents_and_a_public_issuer(client, cluster):
    await account(client)
    tok = (await token(client))["status"]["token"]
    bearer = {"Authorization": f"Bearer {tok}"}
    resp = await client.get(url("/.well-known/openid-configuration"), headers=bearer)
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
    doc = await resp.json()
    host = f"127.0.0.1:{client.port}"
    assert doc == {"issuer": "https://kubernetes.default.svc.cluster.local",
                   "jwks_uri": f"https://{host}/clusters/c1/openid/v1/jwks",
                   "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                   "id_token_signing_alg_values_supported": ["RS256"]}
    resp = await client.get(url("/openid/v1/jwks"), headers=bearer)
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/jwk-set+json"
    (key,) = orjson.loads(await resp.read())["keys"]
    assert {k: key[k] for k in ("use", "kty", "alg", "e")} == {"use": "sig", "kty": "RSA", "alg": "RS256", "e": "AQAB"}
    assert key["kid"] == jwt.get_unverified_header(tok)["kid"]
    verified = jwt.decode(tok, jwt.PyJWK(key).key, algorithms=["RS256"],
                          audience="https://kubernetes.default.svc.cluster.local", options={"verify_exp": False})
    assert verified["sub"] == "system:serviceaccount:default:robot"
    resp = await client.get(url("/.well-known/openid-configuration"))
    assert resp.status in (401, 403)  # not public without an OIDC issuer

    public = "https://lks.example:8443/clusters/c1/"
    cluster.token_issuer.set_issuer(public)
    resp = await client.get(url("/.well-known/openid-configuration"))  # anonymous now
    assert resp.status == 200
    assert (await resp.json())["issuer"] == public
    assert (await resp.json())["jwks_uri"] == "https://lks.example:8443/clusters/c1/openid/v1/jwks"
    assert (await client.get(url("/openid/v1/jwks"))).status == 200
    fresh = (await token(client))["status"]["token"]
    assert claims(fresh)["iss"] == public
    assert claims(fresh)["aud"] == [public, "https://kubernetes.default.svc.cluster.local"]
    assert (await who(client, fresh))["username"] == (await who(client, tok))["username"]  # earlier tokens still work


# -- the signing key in the control plane's record ----------------------------------------------

async def test_the_signing_key_is_kept_with_the_control_plane(tmp_path):
    backend = store.open_store("memory://")
    await backend.start()
    planes = ControlPlanes(meta=backend, data_dir=tmp_path, clock=ManualClock())
    cluster = await planes.create("c", "1.36")
    sa = await cluster.registry("", "v1", "serviceaccounts").create("default", {"metadata": {"name": "robot"}})
    tok = cluster.token_issuer.issue(sa, audiences=cluster.token_issuer.audiences, seconds=3600)
    record = await planes.record(cluster.id)
    assert record["serviceAccountKey"].startswith("-----BEGIN PRIVATE KEY-----")
    await planes.stop(cluster.id)
    again = await planes.start(cluster.id)
    assert (await again.authenticate(bearer=tok, peer_cert_der=None)).name == "system:serviceaccount:default:robot"

    # a cluster recorded before keys were gets one at its next start, and keeps it
    await planes.stop(cluster.id)
    kv = await backend.get(_PREFIX + cluster.id)
    old = orjson.loads(kv.value)
    del old["serviceAccountKey"]
    await backend.update(_PREFIX + cluster.id, orjson.dumps(old), mod_revision=kv.mod_revision)
    started = await planes.start(cluster.id)
    key = (await planes.record(cluster.id))["serviceAccountKey"]
    assert started.token_issuer.key.pem.decode() == key
    await planes.stop(cluster.id)
    assert (await planes.start(cluster.id)).token_issuer.key.pem.decode() == key
    await planes.stop_all()
    await backend.close()


async def test_tokens_bound_to_a_secret_or_a_node(client, cluster):
    await account(client)
    status, secret = await post(client, "/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}})
    assert status == 201
    tok = (await token(client, boundObjectRef={"apiVersion": "v1", "kind": "Secret", "name": "s"}))["status"]["token"]
    assert claims(tok)["kubernetes.io"]["secret"] == {"name": "s", "uid": secret["metadata"]["uid"]}
    assert await who(client, tok) is not None
    await client.delete(url("/api/v1/namespaces/default/secrets/s"), headers=AUTH)
    assert await who(client, tok) is None

    status, node = await post(client, "/api/v1/nodes", {"metadata": {"name": "n1"}})
    assert status == 201, node
    tok = (await token(client, boundObjectRef={"apiVersion": "v1", "kind": "Node", "name": "n1"}))["status"]["token"]
    assert claims(tok)["kubernetes.io"]["node"] == {"name": "n1", "uid": node["metadata"]["uid"]}
    assert (await who(client, tok))["extra"]["authentication.kubernetes.io/node-name"] == ["n1"]
    await client.delete(url("/api/v1/nodes/n1"), headers=AUTH)
    assert await who(client, tok) is None
    status, obj = await post(client, f"{SA}/robot/token", {"spec": {"boundObjectRef": {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}})
    assert status == 400
    assert obj["message"] == 'cannot bind token for serviceaccount "robot" to object of type apps/v1, Kind=Deployment'
