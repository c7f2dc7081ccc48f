"""Gatekeeper in one cluster (`lks.policy.gatekeeper`), on the memory store with a manual
clock: templates make constraint CRDs, the webhook (answered in process) denies, warns or lets
through, broken templates report byPod errors, and the audit writes constraint statuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from support import ADMIN, CA, TOKEN, backend, clock  # noqa: F401

from lks import store
from lks.clock import ManualClock
from lks.controllers.crd import CRDController
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.policy import gatekeeper

LABELS_CEL = {
    "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
    "metadata": {"name": "k8srequiredlabels"},
    "spec": {"crd": {"spec": {"names": {"kind": "K8sRequiredLabels"}, "validation": {"openAPIV3Schema": {
        "type": "object", "properties": {"labels": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "allowedRegex": {"type": "string"}}}}}}}}},
        "targets": [{"target": "admission.k8s.gatekeeper.sh", "code": [{"engine": "K8sNativeValidation", "source": {
            "validations": [{
                "expression": "(has(variables.anyObject.metadata) && variables.params.labels.all(entry, "
                              "has(variables.anyObject.metadata.labels) && "
                              "entry.key in variables.anyObject.metadata.labels))",
                "messageExpression": '"missing required label, requires all of: " + '
                                     'variables.params.labels.map(entry, entry.key).join(", ")'}]}}]}]}}


def constraint(name: str, action: str | None = None, **parameters: object) -> dict:
    spec: dict = {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Namespace"]}]},
                  "parameters": parameters or {"labels": [{"key": "owner"}]}}
    if action:
        spec["enforcementAction"] = action
    return {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels",
            "metadata": {"name": name}, "spec": spec}


@pytest.fixture
async def cluster(backend: store.Backend, clock: ManualClock) -> AsyncIterator[Cluster]:  # noqa: F811
    c = Cluster(id="gk1", name="gk1", kubernetes_version="1.36", backend=backend, ca=CA,
                tokens={TOKEN: ADMIN}, clock=clock)
    await c.start()
    crds = CRDController(c)
    await crds.start()
    await gatekeeper.configure(c, enabled=True)
    yield c
    await gatekeeper.stop(c.id)
    await crds.stop()
    await c.stop()


async def until(check, tries: int = 400):
    for _ in range(tries):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def user() -> WriteOptions:
    return WriteOptions(user=ADMIN)


async def template_ready(cluster: Cluster, name: str) -> dict:
    reg = cluster.registry("templates.gatekeeper.sh", "v1", "constrainttemplates")

    async def status():
        t = await reg.get_or_none(None, name)
        return t if t and (t.get("status") or {}).get("byPod") else None
    return await until(status)


async def add_template(cluster: Cluster, template: dict) -> dict:
    reg = cluster.registry("templates.gatekeeper.sh", "v1", "constrainttemplates")
    await reg.create(None, template, user())
    return await template_ready(cluster, template["metadata"]["name"])


async def test_addon_objects(cluster: Cluster):
    deploys = cluster.registry("apps", "v1", "deployments")
    assert (await deploys.get("gatekeeper-system", "gatekeeper-controller-manager"))["spec"]["replicas"] == 2
    assert (await deploys.get("gatekeeper-system", "gatekeeper-audit"))["spec"]["replicas"] == 1
    assert await deploys.get("kube-system", "azure-policy")
    assert await deploys.get("kube-system", "azure-policy-webhook")
    hooks = cluster.registry("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
    hook = (await hooks.get(None, "gatekeeper-validating-webhook-configuration"))["webhooks"][0]
    assert (hook["name"], hook["failurePolicy"], hook["timeoutSeconds"]) == ("validation.gatekeeper.sh", "Ignore", 3)


async def test_deny_dryrun_warn(cluster: Cluster):
    t = await add_template(cluster, LABELS_CEL)
    assert t["status"]["created"] is True and "errors" not in t["status"]["byPod"][0]
    pod_statuses = cluster.registry("status.gatekeeper.sh", "v1beta1", "constrainttemplatepodstatuses")
    mine = await pod_statuses.get("gatekeeper-system", "gatekeeper--controller--manager-k8srequiredlabels")
    assert mine["status"]["id"] == "gatekeeper-controller-manager"
    assert mine["metadata"]["labels"]["internal.gatekeeper.sh/constrainttemplate-name"] == "k8srequiredlabels"
    constraints = cluster.registry("constraints.gatekeeper.sh", "v1beta1", "k8srequiredlabels")
    await constraints.create(None, constraint("ns-must-have-owner"), user())

    async def enforced():
        c = await constraints.get(None, "ns-must-have-owner")
        return (c.get("status") or {}).get("byPod")
    by_pod = await until(enforced)  # before any audit
    assert by_pod[0]["enforced"] is True and by_pod[0]["id"] == "gatekeeper-controller-manager"
    assert [p["id"] for p in by_pod] == ["gatekeeper-controller-manager", "gatekeeper-audit"]
    namespaces = cluster.registry("", "v1", "namespaces")
    with pytest.raises(errors.APIError) as denied:
        await namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bad"}}, user())
    assert denied.value.code == 403
    assert denied.value.message == ('admission webhook "validation.gatekeeper.sh" denied the request: '
                                    "[ns-must-have-owner] missing required label, requires all of: owner")
    await namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": "good", "labels": {"owner": "me"}}}, user())
    # warn: through, with the warning; dryrun: through, silent
    await constraints.patch(None, "ns-must-have-owner", lambda o: {**o, "spec": {**o["spec"], "enforcementAction": "warn"}},
                            user())
    await asyncio.sleep(0)
    opts = user()
    await namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "warned"}}, opts)
    assert opts.warnings == ["[ns-must-have-owner] missing required label, requires all of: owner"]
    await constraints.patch(None, "ns-must-have-owner",
                            lambda o: {**o, "spec": {**o["spec"], "enforcementAction": "dryrun"}}, user())
    opts = user()
    await namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dry"}}, opts)
    assert opts.warnings == []


async def test_parameters_must_match_schema(cluster: Cluster):
    await add_template(cluster, LABELS_CEL)
    constraints = cluster.registry("constraints.gatekeeper.sh", "v1beta1", "k8srequiredlabels")
    with pytest.raises(errors.APIError) as refused:
        await constraints.create(None, constraint("wrong", labels="owner"), user())
    assert refused.value.code == 422
    assert "spec.parameters.labels" in refused.value.message


async def test_broken_template_reports_ingest_error(cluster: Cluster):
    broken = {**LABELS_CEL, "metadata": {"name": "k8sbroken"}, "spec": {
        "crd": {"spec": {"names": {"kind": "K8sBroken"}}},
        "targets": [{"target": "admission.k8s.gatekeeper.sh", "code": [{"engine": "K8sNativeValidation", "source": {
            "validations": [{"expression": "object.metadata.name ==", "message": "x"}]}}]}]}}
    t = await add_template(cluster, broken)
    assert "created" not in t["status"]
    error = t["status"]["byPod"][0]["errors"][0]
    assert error["code"] == "ingest_error"
    assert error["message"].startswith("Could not ingest Rego: validations: compilation failed: ERROR: <input>:1:")
    assert await cluster.lookup("constraints.gatekeeper.sh", "v1beta1", "k8sbroken") is None


async def test_audit_writes_status(cluster: Cluster):
    await add_template(cluster, LABELS_CEL)
    namespaces = cluster.registry("", "v1", "namespaces")
    for name in ("a1", "a2"):
        await namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, user())
    constraints = cluster.registry("constraints.gatekeeper.sh", "v1beta1", "k8srequiredlabels")
    c = constraint("audit-owner", "dryrun")
    c["spec"]["match"]["excludedNamespaces"] = ["kube-*", "gatekeeper-system"]
    await constraints.create(None, c, user())
    gk = gatekeeper.running(cluster.id)
    await until(gk.state.constraints)  # the constraint kind's watch cache has it
    results = await gk.audit.run()
    result = results[("K8sRequiredLabels", "audit-owner")]
    names = sorted(v["name"] for v in result.violations)
    assert "a1" in names and "a2" in names and "kube-system" not in names and "gatekeeper-system" not in names
    status = (await constraints.get(None, "audit-owner"))["status"]
    assert status["totalViolations"] == result.total == len(names)
    assert status["auditTimestamp"]
    assert status["violations"][0] == {"enforcementAction": "dryrun", "group": "", "kind": "Namespace",
                                       "message": "missing required label, requires all of: owner",
                                       "name": status["violations"][0]["name"], "version": "v1"}
    assert gatekeeper.violations(cluster.id)[("K8sRequiredLabels", "audit-owner")].total == result.total


async def test_audit_limit(cluster: Cluster):
    gk = gatekeeper.running(cluster.id)
    gk.audit.limit = 1
    await add_template(cluster, LABELS_CEL)
    constraints = cluster.registry("constraints.gatekeeper.sh", "v1beta1", "k8srequiredlabels")
    await constraints.create(None, constraint("limited", "dryrun"), user())
    await until(gk.state.constraints)
    await gk.audit.run()
    status = (await constraints.get(None, "limited"))["status"]
    assert status["totalViolations"] >= 2 and len(status["violations"]) == 1


async def test_config_excludes_namespaces(cluster: Cluster):
    await add_template(cluster, LABELS_CEL)
    configs = cluster.registry("config.gatekeeper.sh", "v1alpha1", "configs")
    await configs.create("gatekeeper-system", {
        "apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
        "metadata": {"name": "config", "namespace": "gatekeeper-system"},
        "spec": {"match": [{"excludedNamespaces": ["skip-*"], "processes": ["*"]}]}}, user())
    constraints = cluster.registry("constraints.gatekeeper.sh", "v1beta1", "k8srequiredlabels")
    await constraints.create(None, constraint("owner"), user())
    namespaces = cluster.registry("", "v1", "namespaces")
    await namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "skip-me"}}, user())
    with pytest.raises(errors.APIError):
        await namespaces.create(None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keep"}}, user())


async def test_template_deleted_takes_its_crd(cluster: Cluster):
    await add_template(cluster, LABELS_CEL)
    reg = cluster.registry("templates.gatekeeper.sh", "v1", "constrainttemplates")
    from lks.kube import deletion
    await reg.delete(None, "k8srequiredlabels", deletion.DeleteOptions())
    crds = cluster.registry("apiextensions.k8s.io", "v1", "customresourcedefinitions")

    async def gone():
        crd = await crds.get_or_none(None, "k8srequiredlabels.constraints.gatekeeper.sh")
        return crd is None or crd["metadata"].get("deletionTimestamp")
    await until(gone)
    pod_statuses = cluster.registry("status.gatekeeper.sh", "v1beta1", "constrainttemplatepodstatuses")
    await until(lambda: _no_pod_statuses(pod_statuses))


async def _no_pod_statuses(reg) -> bool:
    return not (await reg.cache()).objects


UNIQUE_KEY_REGO = """package k8suniquekey

violation[{"msg": msg}] {
  ns := input.review.object.metadata.namespace
  other := data.inventory.namespace[ns]["v1"]["ConfigMap"][name]
  name != input.review.object.metadata.name
  other.data.key == input.review.object.data.key
  msg := sprintf("key already used by %v", [name])
}
"""


async def test_rego_template_reads_synced_inventory(cluster: Cluster):
    template = {"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
                "metadata": {"name": "k8suniquekey"},
                "spec": {"crd": {"spec": {"names": {"kind": "K8sUniqueKey"}}},
                         "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": UNIQUE_KEY_REGO}]}}
    t = await add_template(cluster, template)
    assert t["status"].get("created") is True, t["status"]
    configs = cluster.registry("config.gatekeeper.sh", "v1alpha1", "configs")
    await configs.create("gatekeeper-system", {
        "apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
        "metadata": {"name": "config", "namespace": "gatekeeper-system"},
        "spec": {"sync": {"syncOnly": [{"group": "", "version": "v1", "kind": "ConfigMap"}]}}}, user())
    constraints = cluster.registry("constraints.gatekeeper.sh", "v1beta1", "k8suniquekey")
    await constraints.create(None, {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sUniqueKey",
                                    "metadata": {"name": "unique-key"},
                                    "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["ConfigMap"]}]}}},
                             user())
    gk = gatekeeper.running(cluster.id)
    await until(gk.state.constraints)
    await until(gk.state.config)
    cms = cluster.registry("", "v1", "configmaps")
    await cms.create("default", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first"},
                                 "data": {"key": "a"}}, user())
    await until(lambda: _has_configmap(cluster, "first"))
    with pytest.raises(errors.APIError) as denied:
        await cms.create("default", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "second"},
                                     "data": {"key": "a"}}, user())
    assert denied.value.message.endswith("[unique-key] key already used by first")


async def _has_configmap(cluster: Cluster, name: str) -> bool:
    reg = cluster.registry("", "v1", "configmaps")
    return reg.key("default", name) in (await reg.cache()).objects


async def test_disable_removes_the_addon(cluster: Cluster):
    await gatekeeper.configure(cluster, enabled=False)
    assert gatekeeper.running(cluster.id) is None
    hooks = cluster.registry("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
    assert await hooks.get_or_none(None, "gatekeeper-validating-webhook-configuration") is None
    deploys = cluster.registry("apps", "v1", "deployments")
    assert await deploys.get_or_none("kube-system", "azure-policy") is None
    namespace = await cluster.registry("", "v1", "namespaces").get_or_none(None, "gatekeeper-system")
    assert namespace is None or namespace["metadata"].get("deletionTimestamp")


async def test_gatekeeper_checks_its_own_resources(cluster: Cluster):
    templates = cluster.registry("templates.gatekeeper.sh", "v1", "constrainttemplates")
    misnamed = {**LABELS_CEL, "metadata": {"name": "requiredlabels"}}
    with pytest.raises(errors.APIError) as refused:
        await templates.create(None, misnamed, user())
    assert refused.value.code == 422
    assert refused.value.message == (
        'admission webhook "validation.gatekeeper.sh" denied the request: invalid ConstraintTemplate: the '
        "ConstraintTemplate's name \"requiredlabels\" is not equal to the lowercase of CRD's Kind: \"k8srequiredlabels\"")
    await add_template(cluster, LABELS_CEL)
    constraints = cluster.registry("constraints.gatekeeper.sh", "v1beta1", "k8srequiredlabels")
    with pytest.raises(errors.APIError) as refused:
        await constraints.create(None, constraint("odd", "block"), user())
    assert refused.value.message == ('admission webhook "validation.gatekeeper.sh" denied the request: unrecognized '
                                     'enforcementAction: "block" is not within the supported list '
                                     "[deny dryrun warn scoped]")
