"""`lks aks maintenanceconfiguration` and the auto-upgrade channels of `lks aks update`, as az
sends and prints them, against a real `lks up` (a cluster of their own, so that no channel set
here moves the clusters other tests upgrade)."""

from __future__ import annotations

import json

import pytest

MC = ("-g", "mrg", "--cluster-name", "mc")


@pytest.fixture(scope="module")
def cluster(server, tmp_path_factory):
    from cli.conftest import Run

    run = Run(server, tmp_path_factory.mktemp("maintenance-cli"))
    run.ok("group", "create", "-n", "mrg", "-l", "eastus")
    run.ok("aks", "create", "-g", "mrg", "-n", "mc", "-c", "1")
    return run


def test_add_update_show_list_delete(cluster):
    run = cluster
    added = run.json("aks", "maintenanceconfiguration", "add", *MC, "-n", "aksManagedAutoUpgradeSchedule",
                     "--schedule-type", "Weekly", "--day-of-week", "Monday", "--interval-weeks", "1",
                     "--duration", "8", "--utc-offset", "+05:30", "--start-time", "00:00")
    window = added["maintenanceWindow"]
    assert added["name"] == "aksManagedAutoUpgradeSchedule" and added["resourceGroup"] == "mrg"
    assert window["schedule"] == {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Monday"}}
    assert (window["durationHours"], window["utcOffset"], window["startTime"]) == (8, "+05:30", "00:00")
    assert window["startDate"]  # the service fills in the day it was set

    again = run("aks", "maintenanceconfiguration", "add", *MC, "-n", "aksManagedAutoUpgradeSchedule",
                "--schedule-type", "Daily", "--interval-days", "1", "--duration", "4", "--start-time", "01:00")
    assert again.returncode == 1
    assert "Maintenance configuration 'aksManagedAutoUpgradeSchedule' already exists" in again.stderr

    updated = run.json("aks", "maintenanceconfiguration", "update", *MC, "-n", "aksManagedAutoUpgradeSchedule",
                       "--schedule-type", "RelativeMonthly", "--interval-months", "1", "--day-of-week", "Sunday",
                       "--week-index", "Last", "--duration", "6", "--start-time", "22:00")
    assert updated["maintenanceWindow"]["schedule"] == {
        "relativeMonthly": {"intervalMonths": 1, "dayOfWeek": "Sunday", "weekIndex": "Last"}}

    legacy = run.json("aks", "maintenanceconfiguration", "add", *MC, "-n", "default", "--weekday", "Tuesday",
                      "--start-hour", "3")
    assert legacy["timeInWeek"] == [{"day": "Tuesday", "hourSlots": [3]}]
    listed = run.json("aks", "maintenanceconfiguration", "list", *MC)
    assert sorted(c["name"] for c in listed) == ["aksManagedAutoUpgradeSchedule", "default"]
    shown = run("aks", "maintenanceconfiguration", "show", *MC, "-n", "default", "-o", "json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["name"] == "default"
    assert "config_name: default" in shown.stderr  # az logs its arguments as a warning

    assert run("aks", "maintenanceconfiguration", "delete", *MC, "-n", "default").returncode == 0
    assert [c["name"] for c in run.json("aks", "maintenanceconfiguration", "list", *MC)] == [
        "aksManagedAutoUpgradeSchedule"]
    missing = run("aks", "maintenanceconfiguration", "update", *MC, "-n", "default", "--weekday", "Monday",
                  "--start-hour", "1")
    assert missing.returncode == 1 and "Maintenance configuration 'default' doesn't exist." in missing.stderr


def test_config_file(cluster, tmp_path):
    path = tmp_path / "window.json"
    path.write_text(json.dumps({"properties": {"maintenanceWindow": {
        "schedule": {"absoluteMonthly": {"intervalMonths": 2, "dayOfMonth": 15}}, "durationHours": 10,
        "utcOffset": "-08:00", "startTime": "08:30", "notAllowedDates": [{"start": "2030-12-23",
                                                                           "end": "2031-01-05"}]}}}))
    config = cluster.json("aks", "maintenanceconfiguration", "add", *MC, "-n", "aksManagedNodeOSUpgradeSchedule",
                          "--config-file", str(path))
    assert config["maintenanceWindow"]["notAllowedDates"] == [{"start": "2030-12-23", "end": "2031-01-05"}]
    assert config["maintenanceWindow"]["schedule"] == {"absoluteMonthly": {"intervalMonths": 2, "dayOfMonth": 15}}
    assert cluster("aks", "maintenanceconfiguration", "delete", *MC, "-n", "aksManagedNodeOSUpgradeSchedule"
                   ).returncode == 0


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(("-n", "aksManagedNodeOSUpgradeSchedule", "--schedule-type", "Weekly", "--interval-weeks", "1",
                  "--duration", "4", "--start-time", "00:00"),
                 "Please specify --interval-weeks and --day-of-week when using weekly schedule.", id="weekly-no-day"),
    pytest.param(("-n", "aksManagedNodeOSUpgradeSchedule", "--schedule-type", "Daily", "--interval-days", "1",
                  "--day-of-week", "Monday", "--duration", "4", "--start-time", "00:00"),
                 "cannot be used for Daily schedule.", id="daily-with-a-day"),
    pytest.param(("-n", "aksManagedNodeOSUpgradeSchedule", "--schedule-type", "Daily", "--interval-days", "1",
                  "--start-time", "00:00"), "Please specify --duration for maintenance window.", id="no-duration"),
    pytest.param(("-n", "default"), "Please specify --weekday and --start-hour for default maintenance "
                 "configuration, or use --config-file instead.", id="default-without-slot"),
    pytest.param(("-n", "aksManagedNodeOSUpgradeSchedule", "--schedule-type", "Daily", "--interval-days", "1",
                  "--duration", "2", "--start-time", "00:00"),
                 "(InvalidParameter) The input 'maintenanceWindow.durationHours' 2 is invalid", id="service-400"),
])
def test_bad_arguments(cluster, args, message):
    res = cluster("aks", "maintenanceconfiguration", "add", *MC, *args)
    assert res.returncode == 1, res.stdout
    assert message in res.stderr


def test_update_sets_the_auto_upgrade_channels(cluster):
    doc = cluster.json("aks", "update", "-g", "mrg", "-n", "mc", "--auto-upgrade-channel", "stable",
                       "--node-os-upgrade-channel", "None")
    assert doc["autoUpgradeProfile"] == {"upgradeChannel": "stable", "nodeOsUpgradeChannel": "None"}
    doc = cluster.json("aks", "update", "-g", "mrg", "-n", "mc", "--auto-upgrade-channel", "none")
    assert doc["autoUpgradeProfile"] == {"upgradeChannel": "none", "nodeOsUpgradeChannel": "None"}
