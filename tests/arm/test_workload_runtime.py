"""An agent pool's `workloadRuntime`: AKS's values and lks's `Process`, the AKS-style 400 for
anything else, immutability, and the node template it gives."""

from __future__ import annotations

import pytest

from lks.arm import fleet, model
from lks.arm.errors import ARMError

NETWORK = {"networkPlugin": "azure", "networkPluginMode": "overlay"}


def _pool(**props):
    return model.agent_pool({"name": "procs", "count": 1, **props}, existing=None, cluster_version="1.36.0",
                            network=NETWORK)


@pytest.mark.parametrize("value", ["OCIContainer", "WasmWasi", "KataVmIsolation", "Process"])
def test_accepted(value):
    assert _pool(workloadRuntime=value)["workloadRuntime"] == value


def test_default_is_oci_container():
    assert _pool()["workloadRuntime"] == "OCIContainer"


def test_unknown_value_is_invalid_parameter():
    with pytest.raises(ARMError) as err:
        _pool(workloadRuntime="Docker")
    assert (err.value.status, err.value.code, err.value.target) == (400, "InvalidParameter",
                                                                    "agentPoolProfile.workloadRuntime")
    assert "'Docker'" in err.value.message and "Process" in err.value.message


def test_cannot_change():
    old = _pool(workloadRuntime="Process")
    with pytest.raises(ARMError) as err:
        model.agent_pool({"name": "procs", "workloadRuntime": "OCIContainer"}, existing=old,
                         cluster_version="1.36.0", network=NETWORK)
    assert err.value.code == "PropertyChangeNotAllowed"
    kept = model.agent_pool({"name": "procs", "count": 2}, existing=old, cluster_version="1.36.0", network=NETWORK)
    assert kept["workloadRuntime"] == "Process"


def test_template_carries_it():
    doc = model.managed_cluster(
        {"location": "eastus", "properties": {"agentPoolProfiles": [
            {"name": "system", "count": 1, "mode": "System"},
            {"name": "procs", "count": 1, "mode": "User", "workloadRuntime": "Process"}]}},
        existing=None, resource_id="/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
        "Microsoft.ContainerService/managedClusters/c1", name="c1", group="rg",
        subscription="00000000-0000-0000-0000-000000000001")
    pools = {p["name"]: p for p in doc["properties"]["agentPoolProfiles"]}
    assert fleet.template(doc, pools["procs"]).workload_runtime == "Process"
    assert fleet.template(doc, pools["system"]).workload_runtime == "OCIContainer"
