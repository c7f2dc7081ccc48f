"""`lks aks create|update|scale` and `lks aks nodepool add|update|scale` with az's cluster
autoscaler flags (`--enable-cluster-autoscaler`/`-e`, `-u`, `-d`, `--min-count`, `--max-count`,
`--cluster-autoscaler-profile`), against a real `lks up`: az's checks and messages before any
request, and the management API's answers after. The autoscaler runs meanwhile, so a pool's
count is only checked where it cannot have moved it."""

from __future__ import annotations

import pytest

from lks.autoscaler import profile

CLUSTER = ("-g", "demo", "-n", "ca")
POOLS = ("-g", "demo", "--cluster-name", "ca")


@pytest.fixture(scope="module")
def made(server, tmp_path_factory):
    from .conftest import Run

    run = Run(server, tmp_path_factory.mktemp("ca-cli"))
    mc = run.json("aks", "create", *CLUSTER, "-c", "1", "--enable-cluster-autoscaler", "--min-count", "1",
                  "--max-count", "2", "--cluster-autoscaler-profile", "scan-interval=20s,expander=most-pods",
                  "skip-nodes-with-local-storage=true", "-o", "json")
    return mc


def _camel(key: str) -> str:
    """A profile key as az prints it (the SDK model's attribute, camel-cased)."""
    head, *rest = key.split("-")
    return head + "".join(w.capitalize() for w in rest)


def _fails(cli, *args: str) -> str:
    res = cli(*args)
    assert res.returncode != 0, res.stdout
    return res.stderr


def test_create_with_the_autoscaler_and_a_profile(made):
    pool = made["agentPoolProfiles"][0]
    assert (pool["enableAutoScaling"], pool["minCount"], pool["maxCount"]) == (True, 1, 2)
    assert 1 <= pool["count"] <= 2  # the autoscaler may have grown it already
    shown = made["autoScalerProfile"]
    assert sorted(shown) == sorted(_camel(k) for k in profile.KEYS)
    assert (shown["scanInterval"], shown["expander"], shown["skipNodesWithLocalStorage"]) == \
        ("20s", "most-pods", "true")
    assert shown["scaleDownUnneededTime"] == "10m"


@pytest.mark.parametrize("args,message", [
    pytest.param(("--enable-cluster-autoscaler", "--min-count", "4", "--max-count", "6"),
                 "node-count is not in the range of min-count and max-count", id="count-outside"),
    pytest.param(("-c", "1", "--enable-cluster-autoscaler", "--min-count", "1"),
                 "Please specify both min-count and max-count when --enable-cluster-autoscaler enabled",
                 id="max-missing"),
    pytest.param(("-c", "1", "--enable-cluster-autoscaler", "--min-count", "3", "--max-count", "2"),
                 "Value of min-count should be less than or equal to value of max-count", id="min>max"),
    pytest.param(("-c", "1", "--min-count", "1", "--max-count", "2"),
                 "min-count and max-count are required for --enable-cluster-autoscaler, please use the flag",
                 id="range-without-flag"),
    pytest.param(("-c", "1", "--enable-cluster-autoscaler", "--min-count", "1", "--max-count", "1001"),
                 "--max-count must be in the range [0,1000]", id="max>1000"),
    pytest.param(("--cluster-autoscaler-profile", "scan-interval=30s,", "=1"),
                 "Empty key specified for cluster-autoscaler-profile", id="empty-key"),
    pytest.param(("--cluster-autoscaler-profile", "scan-intervall=30s"),
                 "'scan-intervall' is an invalid key for cluster-autoscaler-profile. Valid keys are "
                 "balance-similar-node-groups, daemonset-eviction-for-empty-nodes, ", id="unknown-key"),
])
def test_create_checks_like_az(cli, args, message):
    assert message in _fails(cli, "aks", "create", "-g", "demo", "-n", "never", *args)
    assert "never" not in [c["name"] for c in cli.json("aks", "list", "-g", "demo", "-o", "json")]


def test_profile_value_refused_by_the_service(cli, made):
    err = _fails(cli, "aks", "update", *CLUSTER, "--cluster-autoscaler-profile", "scan-interval=1m")
    assert "(InvalidParameter) Invalid value specified for the cluster-autoscaler parameter 'scan-interval'" in err


def test_update_merges_the_profile_and_an_empty_value_resets(cli, made):
    done = cli.json("aks", "update", *CLUSTER, "--cluster-autoscaler-profile", "scale-down-unneeded-time=1m",
                    "expander=", "ignore-daemonsets-utilization=true", "-o", "json")["autoScalerProfile"]
    assert done["scaleDownUnneededTime"] == "1m" and done["scanInterval"] == "20s"
    assert done["expander"] == "random" and done["ignoreDaemonsetsUtilization"] is True


def test_scale_of_an_autoscaled_pool_refused(cli, made):
    assert "Cannot scale cluster autoscaler enabled node pool." in _fails(cli, "aks", "scale", *CLUSTER, "-c", "2")


def test_update_disable_then_enable(cli, made):
    off = cli.json("aks", "update", *CLUSTER, "--disable-cluster-autoscaler", "-o", "json")["agentPoolProfiles"][0]
    assert off["enableAutoScaling"] is False and off.get("minCount") is None
    res = cli("aks", "update", *CLUSTER, "-d")
    assert res.returncode == 0 and "Cluster autoscaler is already disabled for this node pool." in res.stderr
    assert "Cluster autoscaler is not enabled for this node pool." in _fails(
        cli, "aks", "update", *CLUSTER, "-u", "--min-count", "1", "--max-count", "3")
    on = cli.json("aks", "update", *CLUSTER, "-e", "--min-count", "1", "--max-count", "3", "-o", "json")
    assert (on["agentPoolProfiles"][0]["minCount"], on["agentPoolProfiles"][0]["maxCount"]) == (1, 3)
    res = cli("aks", "update", *CLUSTER, "-e", "--min-count", "1", "--max-count", "3")
    assert res.returncode == 0 and "Cluster autoscaler is already enabled for this node pool." in res.stderr
    assert "Can only specify one of --enable-cluster-autoscaler, --update-cluster-autoscaler and " \
        "--disable-cluster-autoscaler" in _fails(cli, "aks", "update", *CLUSTER, "-e", "-d")


def test_update_clears_the_profile(cli, made):
    shown = cli.json("aks", "update", *CLUSTER, "--cluster-autoscaler-profile", "", "-o", "json")["autoScalerProfile"]
    assert shown == {_camel(k): v for k, v in profile.DEFAULTS.items()}


def test_nodepools(cli, made):
    pool = cli.json("aks", "nodepool", "add", *POOLS, "-n", "burst", "-c", "0", "--enable-cluster-autoscaler",
                    "--min-count", "0", "--max-count", "3", "-o", "json")
    assert (pool["enableAutoScaling"], pool["minCount"], pool["maxCount"]) == (True, 0, 3)
    assert "node-count is not in the range of min-count and max-count" in _fails(
        cli, "aks", "nodepool", "add", *POOLS, "-n", "big", "--enable-cluster-autoscaler", "--min-count", "6",
        "--max-count", "12")
    # several pools: `aks update -e/-u` points at `aks nodepool`
    assert 'There are more than one node pool in the cluster. Please use "az aks nodepool" command' in _fails(
        cli, "aks", "update", *CLUSTER, "-u", "--min-count", "1", "--max-count", "4")
    assert "Cannot scale cluster autoscaler enabled node pool." in _fails(
        cli, "aks", "nodepool", "scale", *POOLS, "-n", "burst", "-c", "2")
    moved = cli.json("aks", "nodepool", "update", *POOLS, "-n", "burst", "-u", "--min-count", "1", "--max-count",
                     "5", "-o", "json")
    assert (moved["minCount"], moved["maxCount"]) == (1, 5)
    assert "min-count and max-count are required for --enable-cluster-autoscaler or --update-cluster-autoscaler" \
        in _fails(cli, "aks", "nodepool", "update", *POOLS, "-n", "burst", "--min-count", "1")
    off = cli.json("aks", "nodepool", "update", *POOLS, "-n", "burst", "-d", "-o", "json")
    assert off["enableAutoScaling"] is False and off.get("minCount") is None and off.get("maxCount") is None
    wanted = str(off["count"] + 1)  # a manual scale again, once the autoscaler is off
    assert cli.json("aks", "nodepool", "scale", *POOLS, "-n", "burst", "-c", wanted, "-o", "json")["count"] == \
        int(wanted)
