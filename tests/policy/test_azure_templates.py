"""lks's own ConstraintTemplates for Azure Policy's built-in Kubernetes definitions
(`lks/policy/azure/templates/`): every one compiles with the Rego engine, carries Azure's kind
naming, and judges an example the way the definition's description says, with the constraint
parameters the definition's `details.values` resolve to under its defaults (plus what a test sets).
"""

from __future__ import annotations

from typing import Any

import pytest

from lks.policy.azure import catalog, parameters
from lks.policy.rego import program


def _pod(*containers: dict, **spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"},
            "spec": {"containers": list(containers), **spec}}


def _c(**fields: Any) -> dict:
    return {"name": "app", "image": "myregistry.azurecr.io/app:1.0", **fields}


def _svc(**spec: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "team"},
            "spec": {"ports": [{"port": 443}], **spec}}


LIMITED = {"resources": {"limits": {"cpu": "100m", "memory": "128Mi"}, "requests": {"cpu": "50m", "memory": "64Mi"}}}
CASES = [
    ("95edb821-ddaf-4404-9732-666045e056b4", {}, _pod(_c(securityContext={"privileged": True})), _pod(_c()),
     "Privileged container is not allowed: app"),
    ("febd0533-8e55-448f-b837-bd0e06f16469", {"allowedContainerImagesRegex": "^myregistry[.]azurecr[.]io/.+$"},
     _pod(_c(image="docker.io/nginx")), _pod(_c()), "has not been allowed"),
    ("e345eecc-fa47-480f-9e88-67dcc122b164", {"cpuLimit": "200m", "memoryLimit": "1Gi"},
     _pod(_c(resources={"limits": {"cpu": "1", "memory": "2Gi"}})), _pod(_c(**LIMITED)),
     "cpu limit <1> is higher than the maximum allowed of <200m>"),
    ("03a4ecdb-0684-4039-be91-2762979e1bc8", {}, _pod(_c()), _pod(_c(**LIMITED)), "has no cpu request"),
    ("47a1ee2f-2a2a-4576-bf2a-e0e36709c2b8", {}, _pod(_c(), hostPID=True), _pod(_c()),
     "Sharing the host namespace is not allowed"),
    ("82985f06-dc18-4a48-bc1c-b9f4f0098cfe", {"allowedHostPorts": [{"min": 80, "max": 80}]},
     _pod(_c(ports=[{"containerPort": 8080, "hostPort": 8080}])),
     _pod(_c(ports=[{"containerPort": 80, "hostPort": 80}])), "hostPort are not allowed"),
    ("46592696-4c7b-4bf3-9e45-6c2763bdc0a6", {"labelsList": ["team"]}, _pod(_c()),
     {**_pod(_c()), "metadata": {"name": "p", "labels": {"team": "a"}}}, "you must provide labels"),
    ("c26596ff-4d70-4e6a-9a30-c2506bd2f80c", {"allowedCapabilities": ["NET_BIND_SERVICE"]},
     _pod(_c(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}})),
     _pod(_c(securityContext={"capabilities": {"add": ["NET_BIND_SERVICE"]}})), "has a disallowed capability"),
    ("a27c700f-8a22-44ec-961c-41625264370b", {"disallowedCapabilities": ["SYS_ADMIN"]},
     _pod(_c(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}})), _pod(_c()), "disallowed capability"),
    ("df49d893-a74c-421d-bc95-c663042e5b80", {}, _pod(_c()),
     _pod(_c(securityContext={"readOnlyRootFilesystem": True})), "only read-only root filesystem"),
    ("1a5b4dca-0b6f-4cf5-907c-56316bc1bf3d", {},
     {"kind": "Ingress", "metadata": {"name": "i"}, "spec": {"rules": []}},
     {"kind": "Ingress", "metadata": {"name": "i", "annotations": {"kubernetes.io/ingress.allow-http": "false"}},
      "spec": {"tls": [{"hosts": ["a"]}]}}, "Ingress should be https"),
    ("3fc4dc25-5baf-40d8-9b05-7fe74c1bc64e", {}, _svc(type="LoadBalancer"),
     {**_svc(type="LoadBalancer"), "metadata": {"name": "s", "annotations": {
         "service.beta.kubernetes.io/azure-load-balancer-internal": "true"}}}, "should not have public IPs"),
    ("1c6e92c9-99f0-4e55-9cf2-0c234dc48f99", {}, _pod(_c(securityContext={"allowPrivilegeEscalation": True})),
     _pod(_c()), "Privilege escalation container is not allowed"),
    ("f06ddb64-5fa3-4b77-b166-acb36f7f6042", {}, _pod(_c()), _pod(_c(securityContext={"runAsUser": 1000})),
     "runAsUser"),
    ("098fc59e-46c7-4d99-9b16-64990e543d75", {"allowedHostPaths": {"paths": [{"pathPrefix": "/data",
                                                                              "readOnly": False}]}},
     _pod(_c(), volumes=[{"name": "v", "hostPath": {"path": "/etc"}}]),
     _pod(_c(), volumes=[{"name": "v", "hostPath": {"path": "/data/x"}}]), "HostPath volume"),
    ("16697877-1118-4fb1-9b65-9898ec2509ec", {"allowedVolumeTypes": ["configMap"]},
     _pod(_c(), volumes=[{"name": "v", "hostPath": {"path": "/"}}]),
     _pod(_c(), volumes=[{"name": "v", "configMap": {"name": "x"}}]), "volume type hostPath is not allowed"),
    ("975ce327-682c-4f2e-aa46-b9598289b86c", {"allowedProfiles": ["runtime/default"]}, _pod(_c()),
     _pod(_c(), securityContext={"seccompProfile": {"type": "RuntimeDefault"}}), "Seccomp profile 'not configured'"),
    ("233a2a17-77ca-4fb1-9b6b-69223d272a44", {"allowedServicePortsList": ["443"]}, _svc(ports=[{"port": 80}]),
     _svc(), "Service port 80 is not allowed"),
    ("423dd1ba-798e-40e4-9c4d-b6902674b423", {}, _pod(_c()), _pod(_c(), automountServiceAccountToken=False),
     "Automounting service account token is disallowed"),
    ("9f061a12-e40d-4183-a00e-171812443373", {}, {**_pod(_c()), "metadata": {"name": "p", "namespace": "default"}},
     _pod(_c()), "Usage of the default namespace is not allowed"),
    ("b1a9997f-2883-4f12-bdff-2280f99b5915", {}, _pod(_c()),
     _pod(_c(readinessProbe={"tcpSocket": {"port": 80}}, livenessProbe={"tcpSocket": {"port": 80}})), "has no <"),
    ("021f8078-41a0-40e6-81b6-c6597da9f3ee", {}, _pod(_c(image="nginx")), _pod(_c()), "tagged with latest"),
    ("d46c275d-1680-448d-b2ec-e495a3b6cc89", {"allowedExternalIPs": ["10.0.0.1"]}, _svc(externalIPs=["1.2.3.4"]),
     _svc(externalIPs=["10.0.0.1"]), "forbidden external IPs"),
    ("65280eef-c8b4-425e-9aec-af55e55bf581", {}, _pod(_c()),
     {**_pod(_c()), "metadata": {"name": "p", "ownerReferences": [{"kind": "ReplicaSet", "name": "r"}]}},
     "Naked pod <p> is not allowed"),
    ("34c88cd4-5d72-4dbb-bf77-12c3cafe8791", {},
     {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 3, "template": {"spec": {}}}},
     {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 3, "template": {"spec": {
         "topologySpreadConstraints": [{"maxSkew": 1}]}}}}, "must set podAntiAffinity"),
]


def _program(doc: dict) -> program.Program:
    template = catalog.template(doc)
    assert template is not None
    return program.compile_template(template["spec"]["targets"][0]["rego"])


def _review(obj: dict) -> dict:
    return {"kind": {"group": "", "version": "v1", "kind": obj["kind"]}, "object": obj,
            "namespace": obj["metadata"].get("namespace", ""), "name": obj["metadata"]["name"], "operation": "CREATE"}


def test_every_builtin_has_a_compiling_template_named_as_azure_names_them():
    for doc in catalog.definitions():
        template = catalog.template(doc)
        assert template is not None, doc["name"]
        kind = template["spec"]["crd"]["spec"]["names"]["kind"]
        assert kind.startswith("K8sAzureV") and template["metadata"]["name"] == kind.lower()
        _program(doc)
    assert catalog.template(catalog.definition("95edb821-ddaf-4404-9732-666045e056b4"))["metadata"]["name"] == \
        "k8sazurev2noprivilege"


@pytest.mark.parametrize(("guid", "given", "bad", "good", "message"), CASES, ids=[c[0][:8] for c in CASES])
def test_template_judges_as_described(guid, given, bad, good, message):
    doc = catalog.definition(guid)
    effective = parameters.check("a", doc, {k: {"value": v} for k, v in given.items()})
    values = parameters.resolve(doc, effective)["details"].get("values") or {}
    prog = _program(doc)
    found = prog.violations(_review(bad), values)
    assert found and any(message in v["msg"] for v in found), found
    assert prog.violations(_review(good), values) == []
