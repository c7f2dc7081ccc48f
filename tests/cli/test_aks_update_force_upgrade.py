"""`lks aks update` with az's force-upgrade and support-plan flags: the cluster's
`upgradeSettings.overrideSettings` (forceUpgrade, until: given, or three days from now) and
`supportPlan`, as az 2.91's `aks_update` sends them."""

from __future__ import annotations

import datetime

import pytest

from cli.test_cli import MC_PATH, SUB, FakeARM, cluster, run
from lks.cli import output
from lks.cli.client import Client, Config


@pytest.fixture
def arm() -> FakeARM:
    arm = FakeARM()
    arm.on("GET", MC_PATH, 200, cluster())
    arm.on("PUT", MC_PATH, 200, cluster())
    return arm


@pytest.fixture
def client(arm: FakeARM) -> Client:
    return Client(Config("https://lks.test", "t0ken", "/nonexistent/ca.crt", SUB), transport=arm)


def _override(arm: FakeARM) -> dict:
    return arm.sent("PUT", MC_PATH)["properties"]["upgradeSettings"]["overrideSettings"]


def test_enable_force_upgrade_defaults_until_to_three_days(client, arm):
    run(client, "aks", "update", "-g", "rg1", "-n", "c1", "--enable-force-upgrade")
    override = _override(arm)
    assert override["forceUpgrade"] is True
    until = datetime.datetime.fromisoformat(override["until"].replace("Z", "+00:00"))
    assert datetime.timedelta(days=2, hours=23) < until - datetime.datetime.now(datetime.UTC) <= datetime.timedelta(days=3)


def test_until_and_disable(client, arm):
    run(client, "aks", "update", "-g", "rg1", "-n", "c1", "--enable-force-upgrade",
        "--upgrade-override-until", "2026-12-24T13:00:00Z")
    assert _override(arm)["forceUpgrade"] is True
    assert datetime.datetime.fromisoformat(_override(arm)["until"]) == datetime.datetime(2026, 12, 24, 13,
                                                                                          tzinfo=datetime.UTC)
    run(client, "aks", "update", "-g", "rg1", "-n", "c1", "--disable-force-upgrade")
    assert _override(arm) == {"forceUpgrade": False}


def test_support_plan(client, arm):
    run(client, "aks", "update", "-g", "rg1", "-n", "c1", "--tier", "premium", "--k8s-support-plan",
        "AKSLongTermSupport")
    sent = arm.sent("PUT", MC_PATH)
    assert (sent["sku"]["tier"], sent["properties"]["supportPlan"]) == ("Premium", "AKSLongTermSupport")


def test_bad_until_and_both_flags(client, arm):
    with pytest.raises(output.CLIError, match="soon is not a valid datatime format."):
        run(client, "aks", "update", "-g", "rg1", "-n", "c1", "--upgrade-override-until", "soon")
    with pytest.raises(SystemExit):  # argparse: mutually exclusive
        run(client, "aks", "update", "-g", "rg1", "-n", "c1", "--enable-force-upgrade", "--disable-force-upgrade")
    assert ("PUT", MC_PATH) not in [(m, p) for m, p, _, _ in arm.calls]
