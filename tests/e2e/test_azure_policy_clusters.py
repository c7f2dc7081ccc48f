"""Azure Policy reaching the clusters, end to end: two clusters in one resource group and the demo
cluster in another, all three with the `azurepolicy` add-on (Azure SDK). Assigning the built-in
"Kubernetes cluster should not allow privileged containers" with Deny at the group (`lks policy`
CLI) installs its ConstraintTemplate and constraint in both clusters of the group within seconds
(no 15-minute poll), `kubectl run --privileged` is refused there with Gatekeeper's words, the demo
cluster is left alone, a privileged pod that ran before shows in the constraint's status and as
NonCompliant (with its Kubernetes component) in `lks policy state list`; the what-if lists it
before the assignment exists; deleting the assignment lifts it all. The Gatekeeper audit runs on
its default 60 s interval here: what the test sees comes from the add-on's own sync."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    ManagedCluster,
    ManagedClusterAddonProfile,
    ManagedClusterAgentPoolProfile,
)
from azure.mgmt.resource.resources import ResourceManagementClient

from .conftest import LKS, StaticToken, lks_cli, lks_json, wait_until

NO_PRIVILEGE = "95edb821-ddaf-4404-9732-666045e056b4"
GROUP = "policy-rg"
CLUSTERS = ("pol1", "pol2")
TEMPLATE = "k8sazurev2noprivilege"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("lks-policy-clusters"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def config(server: LKS) -> dict[str, Any]:
    return json.loads((server.home / "config.json").read_text())


@pytest.fixture(scope="module")
def kubeconfigs(server: LKS, config) -> dict[str, Path]:
    """The group's two clusters and the demo cluster, every one with the add-on: name -> kubeconfig."""
    aks = ContainerServiceClient(StaticToken(config["token"]), config["subscription_id"], base_url=config["endpoint"],
                                 connection_verify=config["ca_file"])
    resources = ResourceManagementClient(StaticToken(config["token"]), config["subscription_id"],
                                         base_url=config["endpoint"], connection_verify=config["ca_file"])
    resources.resource_groups.create_or_update(GROUP, {"location": "westeurope"})
    addon = {"azurepolicy": ManagedClusterAddonProfile(enabled=True)}
    pollers = [aks.managed_clusters.begin_create_or_update(GROUP, name, ManagedCluster(
        location="westeurope", dns_prefix=name, addon_profiles=addon, agent_pool_profiles=[
            ManagedClusterAgentPoolProfile(name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System",
                                           os_type="Linux")])) for name in CLUSTERS]
    demo = aks.managed_clusters.get("demo", "demo")
    demo.addon_profiles = addon
    pollers.append(aks.managed_clusters.begin_create_or_update("demo", "demo", demo))
    for poller in pollers:
        assert poller.result().addon_profiles["azurepolicy"].enabled
    out = {"demo": server.kubeconfig}
    for name in CLUSTERS:
        path = server.home / f"{name}.kubeconfig"
        path.write_bytes(aks.managed_clusters.list_cluster_admin_credentials(GROUP, name).kubeconfigs[0].value)
        out[name] = path
    for name, path in out.items():  # Gatekeeper is up in each
        wait_until(lambda p=path: server.kubectl("get", "crd", "constrainttemplates.templates.gatekeeper.sh",
                                                 kubeconfig=p, check=False).returncode == 0, what=f"gatekeeper {name}")
    return out


def run_privileged(server: LKS, kubeconfig: Path, name: str):
    return server.kubectl("run", name, "--image=nginx", "--privileged", "--restart=Never", kubeconfig=kubeconfig,
                          check=False)


def constraints(server: LKS, kubeconfig: Path) -> list[dict]:
    res = server.kubectl("get", "constraints", "-o", "json", kubeconfig=kubeconfig, check=False)
    return json.loads(res.stdout)["items"] if res.returncode == 0 else []


def test_assignment_reaches_the_group_and_reports_compliance(server: LKS, config, kubeconfigs):
    # a privileged pod that runs before any policy
    assert run_privileged(server, kubeconfigs["pol1"], "old-priv").returncode == 0

    # what-if before assigning: the existing privileged pod would be refused
    scope = f"/subscriptions/{config['subscription_id']}/resourceGroups/{GROUP}"
    found = lks_json(server, "policy", "assignment", "what-if", "-n", "no-priv", "-g", GROUP, "--policy", NO_PRIVILEGE,
                     "-p", json.dumps({"effect": "Deny"}))
    hits = {(r["clusterName"], o["namespace"], o["name"]) for r in found for o in r["objects"]}
    assert hits == {("pol1", "default", "old-priv")}, found
    assert all(r["resourceGroup"].lower() == GROUP for r in found)

    lks_json(server, "policy", "assignment", "create", "-n", "no-priv", "-g", GROUP, "--policy", NO_PRIVILEGE,
             "-p", json.dumps({"effect": "Deny"}))
    res = lks_cli(server, "policy", "assignment", "what-if", "-n", "no-such", "-g", GROUP)
    assert res.returncode != 0 and "PolicyAssignmentNotFound" in res.stderr, res.stderr
    # the stored assignment's what-if finds the same
    found = lks_json(server, "policy", "assignment", "what-if", "-n", "no-priv", "-g", GROUP)
    assert {(r["clusterName"], o["name"]) for r in found for o in r["objects"]} == {("pol1", "old-priv")}

    for name in CLUSTERS:
        kc = kubeconfigs[name]
        installed = wait_until(lambda kc=kc: [c for c in constraints(server, kc)
                                              if c["metadata"]["name"].startswith(f"azurepolicy-{TEMPLATE}-")],
                               what=f"constraint in {name}")
        assert installed[0]["metadata"]["labels"]["managed-by"] == "azure-policy-addon"
        assert installed[0]["metadata"]["annotations"]["azure-policy-assignment-id"].lower() == \
            f"{scope}/providers/Microsoft.Authorization/policyAssignments/no-priv".lower()
        assert installed[0]["spec"]["enforcementAction"] == "deny"
        res = wait_until(lambda kc=kc: (r := run_privileged(server, kc, "new-priv")).returncode != 0 and r,
                         what=f"denial in {name}")
        cname = installed[0]["metadata"]["name"]
        assert res.stderr.startswith('Error from server (Forbidden): admission webhook "validation.gatekeeper.sh" '
                                     f"denied the request: [{cname}] Privileged container is not allowed: new-priv, "
                                     "securityContext: "), res.stderr
        # an ordinary pod still runs
        assert server.kubectl("run", "plain", "--image=nginx", "--restart=Never", kubeconfig=kc).returncode == 0

    # the other group's cluster is left alone
    assert not constraints(server, kubeconfigs["demo"])
    assert run_privileged(server, kubeconfigs["demo"], "demo-priv").returncode == 0

    # the existing privileged pod: in the constraint's status and in the compliance states
    def status():
        c = next(c for c in constraints(server, kubeconfigs["pol1"]) if c["metadata"]["name"].startswith("azurepolicy-"))
        return (c.get("status") or {}).get("totalViolations") and c["status"]
    st = wait_until(status, what="audit status")
    assert [(v["namespace"], v["name"], v["kind"]) for v in st["violations"]] == [("default", "old-priv", "Pod")]

    states = wait_until(lambda: len(s := lks_json(server, "policy", "state", "list", "-g", GROUP,
                                                  "--expand", "components")) == 2 and s, what="compliance states")
    by_cluster = {s["resourceId"].rsplit("/", 1)[1]: s for s in states}
    assert by_cluster["pol1"]["complianceState"] == "NonCompliant"
    assert by_cluster["pol1"]["policyDefinitionName"] == NO_PRIVILEGE
    assert by_cluster["pol1"]["policyDefinitionAction"] == "deny"
    assert [(c["id"], c["type"], c["complianceState"]) for c in by_cluster["pol1"]["components"]] == [
        ("default/old-priv", "Pod", "NonCompliant")]
    assert by_cluster["pol2"]["complianceState"] == "Compliant"
    summary = lks_json(server, "policy", "state", "summarize", "-g", GROUP)
    assert summary["results"]["nonCompliantResources"] == 1

    # unassigning lifts it: the add-on's objects go, privileged pods run again
    assert lks_cli(server, "policy", "assignment", "delete", "-n", "no-priv", "-g", GROUP).returncode == 0
    for name in CLUSTERS:
        kc = kubeconfigs[name]
        wait_until(lambda kc=kc: not constraints(server, kc), what=f"constraints gone from {name}")
        wait_until(lambda kc=kc: server.kubectl("get", "constrainttemplate", TEMPLATE, kubeconfig=kc,
                                                check=False).returncode != 0, what=f"template gone from {name}")
        wait_until(lambda kc=kc: run_privileged(server, kc, "after").returncode == 0, what=f"allowed in {name}")
    assert lks_json(server, "policy", "state", "list", "-g", GROUP) == []


def test_manual_edits_and_deletions_are_put_back(server: LKS, kubeconfigs):
    lks_json(server, "policy", "assignment", "create", "-n", "no-priv-audit", "-g", GROUP, "--policy",
             NO_PRIVILEGE, "-p", json.dumps({"effect": "Audit"}))
    kc = kubeconfigs["pol2"]
    c = wait_until(lambda: constraints(server, kc), what="audit constraint")[0]
    assert c["spec"]["enforcementAction"] == "dryrun"
    name = c["metadata"]["name"]
    server.kubectl("patch", "k8sazurev2noprivilege", name, "--type=merge", "-p",
                   '{"spec":{"enforcementAction":"deny"}}', kubeconfig=kc)
    wait_until(lambda: [c for c in constraints(server, kc) if c["spec"]["enforcementAction"] == "dryrun"],
               what="manual edit reverted")
    server.kubectl("delete", "k8sazurev2noprivilege", name, kubeconfig=kc)
    wait_until(lambda: [c for c in constraints(server, kc) if c["metadata"]["name"] == name], what="re-created")
    server.restart()  # the add-on's objects are still there, in line, after the service restarts
    wait_until(lambda: [c for c in constraints(server, kc) if c["spec"]["enforcementAction"] == "dryrun"],
               what="constraint after restart")
    assert lks_cli(server, "policy", "assignment", "delete", "-n", "no-priv-audit", "-g", GROUP).returncode == 0
    wait_until(lambda: not constraints(server, kc), what="constraints gone")
