"""The autoscaler profile's keys, defaults, parsing and AKS's refusals (`lks.autoscaler.profile`)."""

import pytest

from lks.arm.errors import ARMError
from lks.autoscaler import profile


def test_defaults_are_every_key_as_aks_shows_them():
    shown = profile.normalize(None)
    assert list(shown) == list(profile.DEFAULTS)
    assert shown["scan-interval"] == "10s" and shown["expander"] == "random"
    assert shown["daemonset-eviction-for-occupied-nodes"] is True
    assert profile.parse(None) == profile.Profile()


def test_delete_delay_follows_the_scan_interval():
    assert profile.normalize({"scan-interval": "20s"})["scale-down-delay-after-delete"] == "20s"
    assert profile.normalize({"scan-interval": "30"})["scale-down-delay-after-delete"] == "30s"
    assert profile.parse({"scan-interval": "30"}).scale_down_delay_after_delete == 30


def test_update_overlays_the_stored_profile_and_empty_resets():
    stored = profile.normalize({"scan-interval": "20s", "expander": "priority"})
    updated = profile.normalize({"expander": "", "max-empty-bulk-delete": "100"}, stored)
    assert updated["scan-interval"] == "20s"
    assert updated["expander"] == "random"
    assert updated["max-empty-bulk-delete"] == "100"


def test_typed_values():
    p = profile.parse({"scan-interval": "30s", "scale-down-delay-after-add": "0m", "new-pod-scale-up-delay": "2m",
                       "scale-down-utilization-threshold": "0.65", "balance-similar-node-groups": "True",
                       "ignore-daemonsets-utilization": True, "max-graceful-termination-sec": "30"})
    assert (p.scan_interval, p.scale_down_delay_after_add, p.new_pod_scale_up_delay) == (30, 0, 120)
    assert p.scale_down_utilization_threshold == 0.65
    assert p.balance_similar_node_groups is True and p.ignore_daemonsets_utilization is True
    assert p.max_graceful_termination_sec == 30


@pytest.mark.parametrize("key,value", [
    pytest.param("scan-interval", "1m", id="scan-interval-in-minutes"),
    pytest.param("scan-interval", "0s", id="scan-interval-zero"),
    pytest.param("scale-down-delay-after-add", "0s", id="minutes-only-in-seconds"),
    pytest.param("scale-down-delay-after-failure", "30s", id="failure-in-seconds"),
    pytest.param("max-node-provision-time", "1h", id="provision-in-hours"),
    pytest.param("new-pod-scale-up-delay", "5", id="delay-without-unit"),
    pytest.param("scale-down-utilization-threshold", "1.5", id="threshold-above-one"),
    pytest.param("scale-down-utilization-threshold", "nan", id="threshold-nan"),
    pytest.param("max-total-unready-percentage", "101", id="percentage-above-100"),
    pytest.param("max-empty-bulk-delete", "0", id="bulk-delete-zero"),
    pytest.param("ok-total-unready-count", "-1", id="negative-count"),
    pytest.param("expander", "price", id="unknown-expander"),
    pytest.param("skip-nodes-with-system-pods", "yes", id="not-a-bool"),
    pytest.param("daemonset-eviction-for-empty-nodes", "maybe", id="not-a-json-bool"),
])
def test_bad_values_refused_as_aks(key, value):
    with pytest.raises(ARMError) as err:
        profile.normalize({key: value})
    assert err.value.code == "InvalidParameter" and err.value.status == 400
    assert err.value.message == (f"Invalid value specified for the cluster-autoscaler parameter '{key}'. Please "
                                 "refer to https://aka.ms/cluster-autoscaler for more details.")
