"""Automatic upgrades through the Azure SDK on `lks up --time-scale 3600` (an hour a second): a
cluster on the `patch` channel with a weekly aksManagedAutoUpgradeSchedule window that opens
8 service hours later (8 real seconds: room for a loaded machine's requests, and no more wait
than that) is not upgraded when the channel is set, and is upgraded to the newest patch of its
minor once the service's clock has entered the window."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    AgentPoolUpgradeSettings,
    MaintenanceConfiguration,
    MaintenanceWindow,
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
    ManagedClusterAutoUpgradeProfile,
    Schedule,
    TimeInWeek,
    WeeklySchedule,
)
from azure.mgmt.resource.resources import ResourceManagementClient

from .conftest import LKS, StaticToken, wait_until

SCALE = 3600
WINDOW = "aksManagedAutoUpgradeSchedule"


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    server = LKS(tmp_path_factory.mktemp("lks-time-scale"), "--time-scale", str(SCALE))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def aks(fast):
    config = json.loads((fast.home / "config.json").read_text())
    credential = StaticToken(config["token"])
    ResourceManagementClient(credential, config["subscription_id"], base_url=config["endpoint"],
                             connection_verify=config["ca_file"]).resource_groups.create_or_update(
        "auto-rg", {"location": "eastus"})
    return ContainerServiceClient(credential, config["subscription_id"], base_url=config["endpoint"],
                                  connection_verify=config["ca_file"])


def _weekly(day: str, start: str, start_date: str | None = None) -> MaintenanceConfiguration:
    return MaintenanceConfiguration(maintenance_window=MaintenanceWindow(
        schedule=Schedule(weekly=WeeklySchedule(interval_weeks=1, day_of_week=day)), duration_hours=4,
        start_time=start, start_date=start_date))


def test_patch_channel_waits_for_the_window_on_the_fast_clock(aks):
    cluster = aks.managed_clusters.begin_create_or_update("auto-rg", "auto", ManagedCluster(
        location="eastus", kubernetes_version="1.36.2", agent_pool_profiles=[ManagedClusterAgentPoolProfile(
            name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System", os_type="Linux",
            # drain minutes run on the fast clock too: a day of them is 24 real seconds
            upgrade_settings=AgentPoolUpgradeSettings(drain_timeout_in_minutes=1440))])).result()
    assert cluster.current_kubernetes_version == "1.36.2"

    # the service's time, read from what it stamps on a configuration, and a window 8 hours on
    probe = aks.maintenance_configurations.create_or_update("auto-rg", "auto", WINDOW, _weekly("Monday", "00:00"))
    now = probe.system_data.last_modified_at
    opens = (now + timedelta(hours=8)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    config = aks.maintenance_configurations.create_or_update("auto-rg", "auto", WINDOW, _weekly(
        opens.strftime("%A"), opens.strftime("%H:%M"), start_date=probe.maintenance_window.start_date))
    assert config.maintenance_window.schedule.weekly.day_of_week == opens.strftime("%A")

    cluster.auto_upgrade_profile = ManagedClusterAutoUpgradeProfile(upgrade_channel="patch")
    cluster = aks.managed_clusters.begin_create_or_update("auto-rg", "auto", cluster).result()
    assert cluster.auto_upgrade_profile.upgrade_channel == "patch"
    assert cluster.current_kubernetes_version == "1.36.2"  # the window is still hours (of service time) away
    assert aks.managed_clusters.get("auto-rg", "auto").current_kubernetes_version == "1.36.2"

    def upgraded():
        c = aks.managed_clusters.get("auto-rg", "auto")
        return c if c.current_kubernetes_version == "1.36.4" and c.provisioning_state == "Succeeded" else None

    cluster = wait_until(upgraded, timeout=180, interval=0.5, what="the automatic upgrade")
    assert [p.current_orchestrator_version for p in cluster.agent_pool_profiles] == ["1.36.4"]
    later = aks.maintenance_configurations.create_or_update("auto-rg", "auto", WINDOW, config)
    assert later.system_data.last_modified_at >= opens  # the service's clock has been in the window


def test_maintenance_configurations_through_the_sdk(aks):
    aks.managed_clusters.begin_create_or_update("auto-rg", "maint", ManagedCluster(
        location="eastus", agent_pool_profiles=[ManagedClusterAgentPoolProfile(
            name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System", os_type="Linux")])).result()
    created = aks.maintenance_configurations.create_or_update("auto-rg", "maint", "default", MaintenanceConfiguration(
        time_in_week=[TimeInWeek(day="Saturday", hour_slots=[1, 2])]))
    assert created.name == "default" and created.time_in_week[0].hour_slots == [1, 2]
    got = aks.maintenance_configurations.get("auto-rg", "maint", "default")
    assert got.id.endswith("/maintenanceConfigurations/default") and got.time_in_week[0].day == "Saturday"
    assert [c.name for c in aks.maintenance_configurations.list_by_managed_cluster("auto-rg", "maint")] == ["default"]

    with pytest.raises(HttpResponseError) as err:  # a window shorter than AKS's four hours
        aks.maintenance_configurations.create_or_update("auto-rg", "maint", WINDOW, MaintenanceConfiguration(
            maintenance_window=MaintenanceWindow(schedule=Schedule(weekly=WeeklySchedule(
                interval_weeks=1, day_of_week="Friday")), duration_hours=2, start_time="01:00")))
    assert err.value.status_code == 400 and err.value.error.code == "InvalidParameter"
    with pytest.raises(HttpResponseError, match="are allowed configNames"):
        aks.maintenance_configurations.create_or_update("auto-rg", "maint", "nightly", created)

    aks.maintenance_configurations.delete("auto-rg", "maint", "default")
    assert list(aks.maintenance_configurations.list_by_managed_cluster("auto-rg", "maint")) == []
    with pytest.raises(ResourceNotFoundError):
        aks.maintenance_configurations.get("auto-rg", "maint", "default")
