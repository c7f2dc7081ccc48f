"""The HPA's normalization (lks.controllers.hpa_behavior) as pure functions: selectPolicy Max and
Min over Pods and Percent policies, a scale-down limit counted from the period's start, the
scale-up stabilization window and the legacy limits."""

from __future__ import annotations

import pytest

from lks.controllers import hpa_behavior as b

NOW = 1_000.0
UP_POLICIES = [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]


@pytest.mark.parametrize(("select", "expected"), [
    pytest.param("Max", 6, id="max-picks-the-larger-change"),
    pytest.param("Min", 4, id="min-picks-the-smaller-change"),
    pytest.param("Disabled", 2, id="disabled-keeps-the-count"),
])
def test_scale_up_select_policy(select: str, expected: int) -> None:
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": select, "policies": UP_POLICIES},
                "scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}
    desired, conditions = b.normalize_with_behavior(b.History(), behavior, 2, 20, 1, 50, NOW)
    assert desired == expected
    assert conditions[-1][:3] == ("ScalingLimited", "True", "ScaleUpLimit")


def test_scale_down_limit_counts_from_the_period_start() -> None:
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 0, "policies": UP_POLICIES},
                "scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                              "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}}
    history = b.History()
    history.store_scale_event(behavior, 8, 6, NOW - 30)  # 2 removed 30 s ago: the period began at 8
    desired, conditions = b.normalize_with_behavior(history, behavior, 6, 1, 1, 10, NOW)
    assert desired == 4
    assert conditions[-1] == ("ScalingLimited", "True", "ScaleDownLimit",
                              "the desired replica count is decreasing faster than the maximum scale rate")


def test_scale_up_stabilization_window() -> None:
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 60, "policies": UP_POLICIES},
                "scaleDown": {"stabilizationWindowSeconds": 0, "policies": UP_POLICIES}}
    history = b.History(recommendations=[[3, NOW - 30]])
    desired, conditions = b.normalize_with_behavior(history, behavior, 2, 8, 1, 10, NOW)
    assert desired == 3  # the lowest recommendation of the last minute
    assert conditions[0][:3] == ("AbleToScale", "True", "ScaleUpStabilized")


def test_legacy_limits() -> None:
    assert b.normalize(b.History(), 3, 20, 1, 10, NOW)[0] == 6  # at most double
    assert b.normalize(b.History(), 1, 20, 1, 10, NOW)[0] == 4  # or 4
    desired, conditions = b.normalize(b.History(), 3, 0, 2, 10, NOW)
    assert desired == 2 and conditions[-1][2] == "TooFewReplicas"
