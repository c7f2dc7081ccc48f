"""The audit log of a hosted cluster, on a real `lks up` of its own (the policy file must be in
`$LKS_HOME` before the server starts): audit.k8s.io/v1 Events as JSON lines in
`clusters/<id>/audit.log`, levels and stages as the policy says, the `Audit-Id` header on every
response, the authorizer's and Pod Security's audit annotations, impersonated users, request
and response objects at RequestResponse, and nothing for requests at level None."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

from .conftest import LKS, raw, wait_until

POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  verbs: [get, list, watch]
  resources: [{group: "", resources: [events]}]
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
- level: RequestResponse
  resources: [{group: "", resources: [configmaps]}]
- level: Request
  resources: [{group: "", resources: ["pods/status", "*/scale"]}]
  omitStages: [RequestReceived]
- level: Metadata
  omitStages: [RequestReceived]
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    home = tmp_path_factory.mktemp("lks-audit")
    (home / "audit-policy.yaml").write_text(POLICY)
    server = LKS(home)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def audit_api(audited):
    c = audited.api_client()
    yield c
    c.close()


def _log(server: LKS) -> Path:
    return wait_until(lambda: next(iter(server.home.glob("clusters/*/audit.log")), None), what="an audit log")


def _events(server: LKS, audit_id: str, count: int = 1) -> list[dict]:
    """The events of one request, once `count` of them are written."""
    def found() -> list[dict]:
        lines = _log(server).read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["auditID"] == audit_id]
    return wait_until(lambda: (evs := found()) and len(evs) >= count and evs, what=f"audit events of {audit_id}")


def test_every_response_has_an_audit_id_and_a_metadata_event(audited, audit_api):
    resp = raw(audit_api, "GET", "/api/v1/namespaces/default/pods?limit=5", **{"User-Agent": "tester/1.0"})
    assert resp.status == 200
    audit_id = resp.headers["Audit-Id"]
    (ev,) = _events(audited, audit_id)
    assert ev["kind"] == "Event" and ev["apiVersion"] == "audit.k8s.io/v1"
    assert ev["level"] == "Metadata" and ev["stage"] == "ResponseComplete"
    assert ev["requestURI"] == "/api/v1/namespaces/default/pods?limit=5" and ev["verb"] == "list"
    assert ev["user"]["username"] == "masterclient" and "system:masters" in ev["user"]["groups"]
    assert ev["sourceIPs"] == ["127.0.0.1"] and ev["userAgent"] == "tester/1.0"
    assert ev["objectRef"] == {"resource": "pods", "namespace": "default", "apiVersion": "v1"}
    assert ev["responseStatus"] == {"metadata": {}, "code": 200}
    assert ev["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert ev["requestReceivedTimestamp"].endswith("Z") and ev["stageTimestamp"] >= ev["requestReceivedTimestamp"]
    assert "requestObject" not in ev and "responseObject" not in ev
    # an error answer has its Audit-Id too, and the event the Status
    resp = raw(audit_api, "GET", "/api/v1/namespaces/default/secrets/missing")
    (ev,) = _events(audited, resp.headers["Audit-Id"])
    assert ev["responseStatus"]["code"] == 404 and ev["responseStatus"]["reason"] == "NotFound"
    assert ev["responseStatus"]["message"] == 'secrets "missing" not found'


def test_request_response_level_keeps_both_objects_and_all_stages(audited, audit_api):
    core = client.CoreV1Api(audit_api)
    _, _, headers = core.create_namespaced_config_map_with_http_info(
        "default", {"metadata": {"name": "audited"}, "data": {"k": "v"}})
    evs = _events(audited, headers["Audit-Id"], count=2)
    assert [e["stage"] for e in evs] == ["RequestReceived", "ResponseComplete"]
    received, done = evs
    assert received["level"] == "RequestResponse" and "responseStatus" not in received
    assert done["objectRef"]["name"] == "audited" and done["verb"] == "create"
    assert done["requestObject"]["data"] == {"k": "v"}
    assert done["responseObject"]["metadata"]["uid"] and done["responseStatus"]["code"] == 201


def test_client_audit_ids_are_kept_and_level_none_logs_nothing(audited, audit_api):
    resp = raw(audit_api, "GET", "/api/v1/namespaces/default/events", **{"Audit-ID": "my-own-id"})
    assert resp.headers["Audit-Id"] == "my-own-id"
    marker = raw(audit_api, "GET", "/api/v1/namespaces")  # written after the events read would have been
    _events(audited, marker.headers["Audit-Id"])
    assert "my-own-id" not in _log(audited).read_text()


def test_watches_log_response_started_then_complete(audited, audit_api):
    resp = raw(audit_api, "GET", "/api/v1/namespaces/default/services?watch=1&timeoutSeconds=1")
    evs = _events(audited, resp.headers["Audit-Id"], count=2)
    assert [e["stage"] for e in evs] == ["ResponseStarted", "ResponseComplete"]
    assert evs[0]["verb"] == "watch"


def test_pod_log_streams_carry_their_audit_id_and_log_response_started(audited, audit_api):
    core = client.CoreV1Api(audit_api)
    core.create_namespaced_pod("default", {"metadata": {"name": "talker"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo hi; sleep 3600"]}]}})
    wait_until(lambda: core.read_namespaced_pod("talker", "default").status.phase == "Running", what="talker runs")
    resp = raw(audit_api, "GET", "/api/v1/namespaces/default/pods/talker/log")
    assert resp.status == 200
    evs = _events(audited, resp.headers["Audit-Id"], count=2)
    assert [e["stage"] for e in evs] == ["ResponseStarted", "ResponseComplete"]
    assert evs[0]["objectRef"]["subresource"] == "log"


def test_impersonation_and_pod_security_annotations(audited, audit_api):
    core = client.CoreV1Api(audit_api)
    core.create_namespace({"metadata": {"name": "psa-audit", "labels": {
        "pod-security.kubernetes.io/audit": "restricted"}}})
    core.create_namespaced_service_account("psa-audit", {"metadata": {"name": "default"}}, _request_timeout=30) \
        if not _has_default_account(core, "psa-audit") else None
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "p", "image": "busybox"}]}}
    _, _, headers = wait_until(lambda: _create_pod(core, pod), what="the pod created")
    (ev,) = _events(audited, headers["Audit-Id"])
    assert ev["annotations"]["pod-security.kubernetes.io/enforce-policy"] == "privileged:latest"
    assert ev["annotations"]["pod-security.kubernetes.io/audit-violations"].startswith(
        'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "p" must set')
    resp = raw(audit_api, "GET", "/api/v1/namespaces/psa-audit/configmaps", **{"Impersonate-User": "jane"})
    (ev,) = [e for e in _events(audited, resp.headers["Audit-Id"], count=2) if e["stage"] == "ResponseComplete"]
    assert ev["user"]["username"] == "masterclient"
    assert ev["impersonatedUser"]["username"] == "jane"


def test_failed_authentication_is_audited_without_a_user(audited, audit_api):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(audit_api.configuration.host + "/api/v1/namespaces/default/pods",
                                 headers={"Authorization": "Bearer not-a-token"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, context=ctx, timeout=30)
    assert caught.value.code == 401
    (ev,) = _events(audited, caught.value.headers["Audit-Id"])
    assert ev["stage"] == "ResponseStarted" and ev["user"] == {}
    assert ev["responseStatus"] == {"metadata": {}, "message": "Authentication failed, attempted: bearer", "code": 401}


def _has_default_account(core: client.CoreV1Api, ns: str) -> bool:
    try:
        core.read_namespaced_service_account("default", ns)
        return True
    except client.ApiException:
        return False


def _create_pod(core: client.CoreV1Api, pod: dict):
    try:
        return core.create_namespaced_pod_with_http_info("psa-audit", pod)
    except client.ApiException as err:  # the namespace's default ServiceAccount may come a moment later
        if err.status == 403 and "service account" in (err.body or ""):
            return None
        raise
