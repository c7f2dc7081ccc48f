"""The deprecated-API gate: the cluster's override settings, when they are in force, and the
error an upgrade across a removed API still in use gets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from lks import store
from lks.arm.errors import ARMError
from lks.clock import ManualClock
from lks.kube import apiusage
from lks.upgrade import apis

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.fixture
async def cluster() -> AsyncIterator[SimpleNamespace]:
    backend = store.open_store("memory://")
    await backend.start()
    clock = ManualClock(NOW)
    yield SimpleNamespace(api_usage=apiusage.Usage(backend, clock), clock=clock)
    await backend.close()


@pytest.mark.parametrize("settings", [
    {}, {"overrideSettings": {}}, {"overrideSettings": {"forceUpgrade": True, "until": "2026-12-10T13:00:00Z"}},
    {"overrideSettings": {"forceUpgrade": False, "until": "2026-12-10T13:00:00.123+01:00"}},
    {"overrideSettings": {"forceUpgrade": True}},
])
def test_valid_upgrade_settings(settings):
    assert apis.upgrade_settings(settings) == settings


@pytest.mark.parametrize(("settings", "target"), [
    pytest.param("yes", "upgradeSettings", id="not-an-object"),
    pytest.param({"overrideSettings": []}, "upgradeSettings.overrideSettings", id="override-not-an-object"),
    pytest.param({"overrideSettings": {"forceUpgrade": "true"}}, "upgradeSettings.overrideSettings.forceUpgrade",
                 id="force-a-string"),
    pytest.param({"overrideSettings": {"until": "next week"}}, "upgradeSettings.overrideSettings.until",
                 id="until-not-a-date"),
    pytest.param({"overrideSettings": {"until": 1700000000}}, "upgradeSettings.overrideSettings.until",
                 id="until-a-number"),
])
def test_invalid_upgrade_settings(settings, target):
    with pytest.raises(ARMError) as err:
        apis.upgrade_settings(settings)
    assert (err.value.status, err.value.code, err.value.target) == (400, "InvalidParameter", target)


@pytest.mark.parametrize(("override", "forced"), [
    ({"forceUpgrade": True, "until": "2023-11-15T00:00:00Z"}, True),
    ({"forceUpgrade": True, "until": "2023-11-14T22:00:00Z"}, False),  # passed
    ({"forceUpgrade": True}, False),  # AKS: only effective with until
    ({"forceUpgrade": False, "until": "2023-11-15T00:00:00Z"}, False),
    ({"forceUpgrade": True, "until": "2023-11-14T23:13:20+01:00"}, False),  # the same instant as NOW
])
def test_force_upgrade_in_force(override, forced):
    assert apis.force_upgrade({"overrideSettings": override}, NOW) is forced


async def test_upgrade_blocked_while_a_removed_api_was_written_in_the_last_12_hours(cluster):
    await cluster.api_usage.record("flowcontrol.apiserver.k8s.io", "v1beta3", "prioritylevelconfigurations", "update",
                                   "helm/v3.14")
    await cluster.api_usage.record("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "get", "kubectl")
    with pytest.raises(ARMError) as err:
        await apis.check_upgrade(cluster, current="1.31.14", target="1.32.12", settings=None, now=NOW)
    e = err.value
    assert (e.status, e.code, e.subcode) == (400, "ValidationError", "UpgradeBlockedOnDeprecatedAPIUsage")
    assert e.body()["error"]["subcode"] == "UpgradeBlockedOnDeprecatedAPIUsage"
    assert e.message == (
        "Control Plane upgrade is blocked due to recent usage of a Kubernetes API deprecated in the specified version. "
        "Please refer to https://kubernetes.io/docs/reference/using-api/deprecation-guide to migrate the usage. To "
        "bypass this error, set enable-force-upgrade in upgradeSettings.overrideSettings. Bypassing this error "
        "without migrating usage will result in the deprecated Kubernetes API calls failing. Usage details: 1 error "
        "occurred:\n\t* usage has been detected on API flowcontrol.apiserver.k8s.io.prioritylevelconfigurations."
        "v1beta3, and was recently seen at: 2023-11-14 22:13:20 +0000 UTC, which will be removed in 1.32\n\n")
    await cluster.api_usage.record("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "create", "kubectl")
    assert len(await apis.blockers(cluster, current="1.31.14", target="1.32.12")) == 2
    # not a minor upgrade, or a minor that removes nothing: not checked
    assert await apis.blockers(cluster, current="1.31.13", target="1.31.14") == []
    await apis.check_upgrade(cluster, current="1.32.11", target="1.33.8", settings=None, now=NOW)
    # the override lets it through
    await apis.check_upgrade(cluster, current="1.31.14", target="1.32.12", now=NOW,
                             settings={"overrideSettings": {"forceUpgrade": True, "until": "2023-11-16T00:00:00Z"}})
    # 12 hours after the last write, the gate opens by itself
    await cluster.clock.advance(12 * 3600)
    await apis.check_upgrade(cluster, current="1.31.14", target="1.32.12", settings=None, now=cluster.clock.now())


async def test_no_cluster_no_check():
    await apis.check_upgrade(None, current="1.31.14", target="1.32.12", settings=None, now=NOW)
