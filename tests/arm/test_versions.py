"""The Kubernetes version catalog, AKS's version rules and errors, and the listing bodies."""

from __future__ import annotations

import pytest

from lks.arm import versions
from lks.arm.errors import ARMError
from lks.kube import catalog

SUPPORTED = ("Please use [az aks get-versions] command to get the supported version list in this region. "
             "For more information, please check https://aka.ms/supported-version-list")


def raises(code: str, fn, *args, **kwargs) -> ARMError:
    with pytest.raises(ARMError) as err:
        fn(*args, **kwargs)
    assert err.value.code == code
    assert err.value.status == 400
    return err.value


def test_catalog_matches_the_hosted_api_server():
    assert versions.minors() == list(catalog.SUPPORTED_VERSIONS)
    assert versions.minor_of(versions.default_version()) == catalog.DEFAULT_VERSION


def test_default_is_latest_patch_of_n_minus_1():
    # 1.37 is GA (AKS GA Oct 2026), so N-1 is 1.36 and its newest patch is the default
    assert versions.PREVIEW == frozenset()
    assert versions.default_version() == "1.36.4"


@pytest.mark.parametrize(("requested", "current", "expected"), [
    pytest.param(None, None, "1.36.4", id="default"),
    pytest.param("", None, "1.36.4", id="empty-is-default"),
    pytest.param("1.36", None, "1.36.4", id="alias-latest-patch"),
    pytest.param("1.34", None, "1.34.12", id="alias-oldest-minor"),
    pytest.param("1.36.2", None, "1.36.2", id="full"),
    pytest.param(" 1.37.1 ", None, "1.37.1", id="whitespace"),
    pytest.param("1.36", "1.36.2", "1.36.2", id="same-alias-keeps-patch"),
    pytest.param("1.37", "1.36.2", "1.37.2", id="new-alias-latest"),
    pytest.param(None, "1.35.7", "1.35.7", id="unset-keeps-current"),
    pytest.param("1.33.9", "1.33.9", "1.33.9", id="running-version-no-longer-offered"),
])
def test_resolve(requested, current, expected):
    assert versions.resolve(requested, current=current) == expected


@pytest.mark.parametrize("requested", ["1.99.0", "1.36.9", "1.30", "1.33.1", "latest", "v1.36.2", "1.36.2.1"])
def test_unknown_versions_are_aks_errors(requested):
    err = raises("AgentPoolK8sVersionNotSupported", versions.resolve, requested)
    assert err.message == f"Version {requested} is not supported in this region. {SUPPORTED}"


def test_non_string_version_is_an_aks_error():
    raises("AgentPoolK8sVersionNotSupported", versions.resolve, 1.36)


def test_unknown_cluster_version_names_the_cluster():
    err = raises("K8sVersionNotSupported", versions.resolve, "1.31.3", cluster_name="asclab-aks")
    assert err.message == f"Managed cluster asclab-aks has invalid version 1.31.3. {SUPPORTED}"


# -- upgrades -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("current", "expected"), [
    pytest.param("1.35.8", ["1.36.4", "1.36.3", "1.36.2", "1.35.9"], id="patch-and-next-minor"),
    pytest.param("1.36.4", ["1.37.2", "1.37.1"], id="latest-patch"),
    pytest.param("1.37.2", [], id="newest"),
    pytest.param("1.34.10", ["1.35.9", "1.35.8", "1.35.7", "1.34.12", "1.34.11"], id="oldest"),
])
def test_control_plane_upgrades(current, expected):
    assert versions.control_plane_upgrades(current) == expected


@pytest.mark.parametrize(("current", "target"), [
    pytest.param("1.35.7", "1.35.9", id="patch"),
    pytest.param("1.35.9", "1.36.2", id="next-minor"),
    pytest.param("1.35.7", "1.36.4", id="next-minor-any-patch"),
    pytest.param("1.36.2", "1.36.2", id="same"),
])
def test_allowed_control_plane_upgrades(current, target):
    versions.validate_control_plane_upgrade(current, target)


def test_skipping_a_minor_is_operation_not_allowed():
    err = raises("OperationNotAllowed", versions.validate_control_plane_upgrade, "1.34.12", "1.36.4")
    assert err.message == ("Upgrading Kubernetes version 1.34.12 to 1.36.4 is not allowed. Available upgrades: "
                           "[1.35.9 1.35.8 1.35.7]. Please see https://aka.ms/aks-supported-k8s-ver for version "
                           "details.")


@pytest.mark.parametrize(("current", "target"), [
    pytest.param("1.36.4", "1.36.2", id="patch"),
    pytest.param("1.36.2", "1.35.9", id="minor"),
])
def test_downgrades_are_operation_not_allowed(current, target):
    err = raises("OperationNotAllowed", versions.validate_control_plane_upgrade, current, target)
    assert err.message.startswith(f"Downgrading Kubernetes version {current} to {target} is not allowed. "
                                  "Available upgrades: [")


def test_control_plane_only_upgrade_keeps_pools_within_three_minors():
    versions.validate_control_plane_upgrade("1.36.4", "1.37.2", pool_versions=["1.34.10"], control_plane_only=True)
    # pools that would trail by four minors block a control-plane-only upgrade (key-based rule)
    err = raises("NodePoolMcVersionIncompatible", versions.validate_control_plane_upgrade, "1.36.4", "1.37.2",
                 pool_versions=["1.33.5"], control_plane_only=True)
    assert err.message == (
        "Node pool version 1.33.5 and control plane version 1.37.2 is incompatible. Minor version of node pool "
        "cannot be more than 3 versions less than control plane's version. Minor version of node pool is 33 and "
        "control plane is 37. For more information, please check https://aka.ms/aks/UpgradeVersionRules")
    # a full upgrade takes the pools along
    versions.validate_control_plane_upgrade("1.36.4", "1.37.2", pool_versions=["1.33.5"])


# -- node pools -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("requested", "control_plane", "expected"), [
    pytest.param(None, "1.36.2", "1.36.2", id="defaults-to-control-plane"),
    pytest.param("1.35", "1.36.2", "1.35.9", id="alias"),
    pytest.param("1.36", "1.36.2", "1.36.2", id="alias-capped-at-control-plane"),
    pytest.param("1.34.10", "1.37.2", "1.34.10", id="three-minors-behind"),
])
def test_check_pool(requested, control_plane, expected):
    assert versions.check_pool(requested, control_plane) == expected


def test_pool_newer_minor_than_control_plane():
    err = raises("NodePoolMcVersionIncompatible", versions.check_pool, "1.37", "1.36.4")
    assert err.message == ("Node pool version 1.37.2 and control plane version 1.36.4 are incompatible. Minor version "
                           "of node pool version 37 is bigger than control plane version 36. For more information, "
                           "please check https://aka.ms/version-skew-policy")


def test_pool_newer_patch_than_control_plane():
    err = raises("NodePoolMcVersionIncompatible", versions.check_pool, "1.36.4", "1.36.2")
    assert "Patch version of node pool version 4 is bigger than control plane version 2." in err.message


def test_pool_upgrade_may_skip_minors_but_not_go_back():
    assert versions.check_pool("1.36.2", "1.36.2", current="1.34.11") == "1.36.2"
    assert versions.check_pool(None, "1.36.2", current="1.34.11") == "1.34.11"  # unset keeps the pool's version
    err = raises("AgentPoolUpgradeVersionNotAllowed", versions.check_pool, "1.35.7", "1.36.2", current="1.35.9")
    assert err.message == ("Upgrade agent pool version from 1.35.9 to 1.35.7 is not allowed, you can only upgrade one "
                           "minor version at a time. Please use [az aks get-upgrades] command to get the supported "
                           "upgrade paths. For more information, please check https://aka.ms/version-skew-policy")


def test_pool_too_old_for_control_plane():
    raises("NodePoolMcVersionIncompatible", versions.validate_pool_version, "1.33.5", "1.37.2")


# -- response bodies ------------------------------------------------------------------------------------

def test_kubernetes_versions_response_shape():
    body = versions.kubernetes_versions_response("eastus")
    assert [v["version"] for v in body["values"]] == ["1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37"]
    for lts_only in body["values"][:3]:  # past community support: LTS only
        assert lts_only["capabilities"] == {"supportPlan": ["AKSLongTermSupport"]}
    assert body["values"][0]["patchVersions"]["1.31.14"] == {"upgrades": ["1.32.11", "1.32.12"]}
    default = body["values"][5]
    assert default == {
        "version": "1.36",
        "isDefault": True,
        "capabilities": {"supportPlan": ["KubernetesOfficial", "AKSLongTermSupport"]},
        "patchVersions": {
            "1.36.2": {"upgrades": ["1.36.3", "1.36.4", "1.37.1", "1.37.2"]},
            "1.36.3": {"upgrades": ["1.36.4", "1.37.1", "1.37.2"]},
            "1.36.4": {"upgrades": ["1.37.1", "1.37.2"]},
        },
    }
    assert list(default) == ["version", "isDefault", "capabilities", "patchVersions"]  # as the spec example
    assert not any("isDefault" in v or "isPreview" in v for v in body["values"] if v["version"] != "1.36")
    assert body["values"][6]["patchVersions"]["1.37.2"] == {"upgrades": []}


def test_upgrade_profile_body():
    body = versions.upgrade_profile("1.36.2", [("nodepool1", "1.36.2", "Linux"), ("userpool", "1.35.8", "Linux")],
                                    resource_id="/subscriptions/s/resourcegroups/rg/providers/"
                                                "Microsoft.ContainerService/managedClusters/c")
    assert body == {
        "id": "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ContainerService/managedClusters/c"
              "/upgradeprofiles/default",
        "name": "default",
        "type": "Microsoft.ContainerService/managedClusters/upgradeprofiles",
        "properties": {
            "controlPlaneProfile": {
                "kubernetesVersion": "1.36.2", "name": "master", "osType": "Linux",
                "upgrades": [{"kubernetesVersion": v} for v in ("1.37.2", "1.37.1", "1.36.4", "1.36.3")],
            },
            "agentPoolProfiles": [
                {"kubernetesVersion": "1.36.2", "name": "nodepool1", "osType": "Linux",
                 "upgrades": [{"kubernetesVersion": v} for v in ("1.37.2", "1.37.1", "1.36.4", "1.36.3")]},
                {"kubernetesVersion": "1.35.8", "name": "userpool", "osType": "Linux",
                 "upgrades": [{"kubernetesVersion": v}
                              for v in ("1.37.2", "1.37.1", "1.36.4", "1.36.3", "1.36.2", "1.35.9")]},
            ],
        },
    }


def test_agent_pool_upgrade_profile_body():
    body = versions.agent_pool_upgrade_profile("1.35.8", "1.36.2", "Linux",
                                               latest_node_image_version="AKSUbuntu-2404gen2containerd-202611.09.0")
    assert body == {
        "name": "default",
        "type": "Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles",
        "properties": {
            "kubernetesVersion": "1.35.8", "osType": "Linux",
            "upgrades": [{"kubernetesVersion": "1.36.2"}, {"kubernetesVersion": "1.35.9"}],
            "latestNodeImageVersion": "AKSUbuntu-2404gen2containerd-202611.09.0",
        },
    }


def test_available_agent_pool_versions():
    body = versions.available_agent_pool_versions()
    entries = body["properties"]["agentPoolVersions"]
    assert [e["kubernetesVersion"] for e in entries] == versions.patches()
    assert [e["kubernetesVersion"] for e in entries if e.get("default")] == ["1.36.4"]
    assert body["type"] == "Microsoft.ContainerService/managedClusters/availableAgentpoolVersions"
    for_cluster = versions.available_agent_pool_versions("1.35.8")["properties"]["agentPoolVersions"]
    assert for_cluster == [{"kubernetesVersion": "1.32.11"}, {"kubernetesVersion": "1.32.12"},
                           {"kubernetesVersion": "1.33.7"}, {"kubernetesVersion": "1.33.8"},
                           {"kubernetesVersion": "1.34.10"}, {"kubernetesVersion": "1.34.11"},
                           {"kubernetesVersion": "1.34.12"}, {"kubernetesVersion": "1.35.7"},
                           {"default": True, "kubernetesVersion": "1.35.8"}]


@pytest.mark.parametrize(("plan", "tier"), [("KubernetesOfficial", "Premium"), ("AKSLongTermSupport", "Standard"),
                                            ("KubernetesOfficial", "Free")])
def test_lts_only_minor_needs_lts_on_premium(plan, tier):
    err = raises("K8sVersionNotSupported", versions.validate_support_plan, "1.31.14", support_plan=plan, tier=tier,
                 cluster_name="c1")
    assert err.message == (
        "Managed cluster c1 is on version 1.31.14, which is only available for Long-Term Support (LTS). If you "
        "intend to onboard to LTS, please ensure the cluster is in Premium tier and LTS support plan (see "
        "https://aka.ms/aks/enable-lts). Otherwise, use [az aks get-versions] command to get the supported version "
        "list in this region. For more information, please check https://aka.ms/supported-version-list")


def test_support_plans():
    versions.validate_support_plan("1.31.14", support_plan="AKSLongTermSupport", tier="premium", cluster_name="c")
    versions.validate_support_plan("1.36.4", support_plan="KubernetesOfficial", tier="Free", cluster_name="c")
    versions.validate_support_plan("1.36.4", support_plan="AKSLongTermSupport", tier="Premium", cluster_name="c")
    err = raises("InvalidParameter", versions.validate_support_plan, "1.36.4", support_plan="Gold", tier="Free",
                 cluster_name="c")
    assert err.target == "supportPlan"
