"""The K8sNativeValidation (CEL) code of lks's Azure built-in templates judges as their Rego:
for every built-in, both engines run over the same reviews (the built-in's own allowed and
disallowed examples from test_azure_templates, every Pod and Service sample of the public
gatekeeper-library, a few edge objects) with the same parameters (the definition's defaults,
the example's, and with containers or images excluded), and must find the same violations.

A CEL validation is one result where the Rego rule gives one per container, so a CEL message is
the Rego messages of its rule joined by "; " (one offender: the very same message); Rego's `%v`
of a map has no CEL spelling, so in the templates that print one the bracketed values are
compared masked. Gatekeeper evaluates CEL when a template carries both (`engines`)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from lks.policy.azure import catalog, parameters
from lks.policy.gatekeeper import engines
from tests.policy.test_azure_templates import CASES, _c, _pod, _review, _svc

LIBRARY = Path(__file__).parent / "fixtures" / "gatekeeper-library"
# templates whose Rego messages print a map (securityContext, a volume, the parameters)
_MAPS_PRINTED = {"k8sazurev2noprivilege", "k8sazurev4hostfilesystem", "k8sazurev3allowedusersgroups",
                 "k8sazurev4hostnetworkingports"}


def _library_objects() -> list[dict]:
    out = []
    for path in sorted(LIBRARY.rglob("*.yaml")):
        if path.name in ("suite.yaml", "template.yaml", "constraint.yaml"):
            continue
        for obj in yaml.safe_load_all(path.read_text()):
            if isinstance(obj, dict) and obj.get("kind") in ("Pod", "Service", "Ingress", "Deployment") \
                    and isinstance(obj.get("metadata"), dict) and "name" in obj["metadata"]:
                out.append(obj)
    return out


_EDGES = [
    _pod(_c(name="a", securityContext={"privileged": True, "runAsUser": 0}),
         _c(name="b", image="nginx:latest", securityContext={"allowPrivilegeEscalation": True,
                                                              "capabilities": {"add": ["SYS_ADMIN", "NET_RAW"]}})),
    _pod(_c(resources={"limits": {"cpu": "2", "memory": "4Gi"}, "requests": {"cpu": "1"}},
            securityContext={"readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsGroup": 5,
                             "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "Unconfined"}})),
    _pod(_c(resources={"limits": {"cpu": "150m", "memory": "64Mi"}}), hostNetwork=True, hostIPC=True,
         securityContext={"fsGroup": 7, "supplementalGroups": [3], "seccompProfile": {"type": "Localhost",
                                                                                       "localhostProfile": "x"}},
         volumes=[{"name": "v", "hostPath": {"path": "/data/"}}, {"name": "e", "emptyDir": {}}],
         initContainers=[_c(name="init", image="busybox", volumeMounts=[{"name": "v", "mountPath": "/d"}],
                            ports=[{"containerPort": 22, "hostPort": 22}])]),
    {**_pod(_c(image="repo@sha256:abc")), "metadata": {"name": "p", "namespace": "default", "labels": {"app": "x"},
                                                        "ownerReferences": [{"kind": "Job", "name": "j"}]}},
    _pod(), _svc(type="LoadBalancer", externalIPs=["1.2.3.4", "10.0.0.1"], ports=[{"port": 80}, {"port": 8080}]),
    {"kind": "Deployment", "metadata": {"name": "d", "namespace": "team"},
     "spec": {"replicas": 2, "template": {"spec": {"affinity": {"podAntiAffinity": {}}, "containers": [_c()]}}}},
    {"kind": "Deployment", "metadata": {"name": "d", "namespace": "team"}, "spec": {"template": {"spec": {}}}},
]


_LIBRARY = _library_objects()
_RANGES = [{"min": 100, "max": 200}, {"min": 1000, "max": 2000}]
# more parameters than the examples give, by template: each branch of the Rego taken
_MORE: dict[str, list[dict]] = {
    "k8sazurev3allowedusersgroups": [
        {"runAsUser": {"rule": "MustRunAs", "ranges": _RANGES}, "runAsGroup": {"rule": "MustRunAs", "ranges": _RANGES},
         "fsGroup": {"rule": "MustRunAs", "ranges": _RANGES}, "supplementalGroups": {"rule": "MustRunAs", "ranges": _RANGES}},
        {"runAsUser": {"rule": "RunAsAny"}, "runAsGroup": {"rule": "MayRunAs", "ranges": _RANGES},
         "fsGroup": {"rule": "MayRunAs", "ranges": _RANGES}, "supplementalGroups": {"rule": "MayRunAs", "ranges": _RANGES}}],
    "k8sazurev3allowedseccomp": [{"allowedProfiles": ["Localhost"]}, {"allowedProfiles": ["localhost/x", "unconfined"]},
                                 {"allowedProfiles": ["*"]}, {}],
    "k8sazurev2volumetypes": [{"volumes": ["*"]}, {"volumes": ["emptyDir", "configMap", "secret", "projected"]}, {}],
    "k8sazurev4hostfilesystem": [{"allowedHostPaths": [{"pathPrefix": "/data", "readOnly": True}]},
                                 {"allowedHostPaths": [{"pathPrefix": "/", "readOnly": True}, {"pathPrefix": "/tmp/"}]}],
    "k8sazurev3allowedcapabilities": [{"allowedCapabilities": [], "requiredDropCapabilities": ["NET_RAW", "SYS_ADMIN"]},
                                      {"allowedCapabilities": ["*"], "requiredDropCapabilities": ["ALL"]}],
    "k8sazurev3disallowedcapabilities": [{"disallowedCapabilities": ["NET_RAW", "SYS_ADMIN", "CHOWN"]}],
    "k8sazurev3containerlimits": [{"cpuLimit": "1", "memoryLimit": "3Gi"}, {"cpuLimit": "1500m", "memoryLimit": "1G"}],
    "k8sazurev4noprivilegeescalation": [{"forcePrivilegeEscalationToBeFalse": True}],
    "k8sazurev4hostnetworkingports": [{"allowHostNetwork": True, "allowedHostPorts": [{"min": 0, "max": 100}]}],
    "k8sazurev2containerallowedimages": [{}, {"imageRegex": "^nginx"}],
    "k8sazurev1podenforcelabels": [{"labels": ["app", "owner"]}, {"labels": []}],
    "k8sazurev2containerenforceprobes": [{"enforceProbes": ["readinessProbe"]}],
    "k8sazurev1serviceallowedports": [{"allowedPorts": ["80", "443"]}, {}],
    "k8sazurev1externalips": [{"allowedExternalIPs": []}],
}


def _runs(name: str, values: dict, bad: dict, good: dict) -> list[tuple[dict, dict | None]]:
    """(object, parameters) pairs: the library's objects of the example's kind under the
    definition's values and _MORE's; the examples and edge objects also with containers or
    images excluded, and under a constraint without parameters."""
    own = [bad, good, *_EDGES]
    out = [(o, values) for o in own + [o for o in _LIBRARY if o["kind"] == bad["kind"]]]
    for more in _MORE.get(name, []):
        params = {**{k: v for k, v in values.items() if k.startswith("excluded")}, **more}
        out += [(o, params) for o in own + [o for o in _LIBRARY if o["kind"] == bad["kind"]]]
    for excluded in ({"excludedContainers": ["app", "nginx"]}, {"excludedImages": ["myregistry.azurecr.io/*", "nginx"]}):
        out += [(o, {**values, **excluded}) for o in own]
    return out + [(o, None) for o in own]


def _masked(messages: set[str]) -> set[str]:
    out = set()
    for m in messages:
        while (n := re.sub(r"\{[^{}\[\]]*\}|\[[^{}\[\]]*\]", "<>", m)) != m:
            m = n
        out.add(m)
    return out


def _found(program: engines.Program, obj: dict, values: dict | None) -> set[str]:
    return {part for v in program.violations(_review(copy.deepcopy(obj)), copy.deepcopy(values), {})
            for part in v["msg"].split("; ")}


@pytest.mark.parametrize(("guid", "given", "bad", "good", "message"), CASES, ids=[c[0][:8] for c in CASES])
def test_cel_and_rego_find_the_same_violations(guid, given, bad, good, message):
    doc = catalog.definition(guid)
    template = catalog.template(doc)
    cel = engines.compile_template(template)
    rego = engines.compile_template(template, native_validation=False)
    assert isinstance(cel, engines.CELProgram) and isinstance(rego, engines.RegoProgram)
    effective = parameters.check("a", doc, {k: {"value": v} for k, v in given.items()})
    values = parameters.resolve(doc, effective)["details"].get("values") or {}
    masked = template["metadata"]["name"] in _MAPS_PRINTED
    violating = 0
    for obj, params in _runs(template["metadata"]["name"], values, bad, good):
        by_rego, by_cel = _found(rego, obj, params), _found(cel, obj, params)
        if masked:
            by_rego, by_cel = _masked(by_rego), _masked(by_cel)
        assert by_cel == by_rego, (obj, params)
        violating += bool(by_rego)
    assert violating > 1
    assert any(message in m for m in _found(cel, bad, values))
    assert _found(cel, good, values) == set()
