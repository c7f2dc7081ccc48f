"""The batch planning of surge upgrades (`lks.upgrade.surge`): AKS's maxSurge/maxUnavailable
arithmetic, and the steps a pool goes through, level-triggered from the nodes' versions."""

from __future__ import annotations

import pytest

from lks.upgrade import surge
from lks.upgrade.surge import Settings, Step, plan


@pytest.mark.parametrize(("max_surge", "max_unavailable", "count", "expected"), [
    pytest.param("10%", "0", 3, (1, 0), id="default-10%-of-3-rounds-up-to-1"),
    pytest.param("10%", "0", 100, (10, 0), id="10%-of-100"),
    pytest.param("33%", "0", 10, (4, 0), id="33%-of-10-rounds-up"),
    pytest.param("5", "0", 3, (5, 0), id="a-number"),
    pytest.param("0", "1", 3, (0, 1), id="no-surge-with-max-unavailable"),
    pytest.param("0", "0", 3, (1, 0), id="at-least-one-surge-node"),
    pytest.param("0", "50%", 5, (0, 3), id="unavailable-percentage-rounds-up"),
])
def test_batch_sizes(max_surge, max_unavailable, count, expected):
    assert Settings(max_surge=max_surge, max_unavailable=max_unavailable).batch(count) == expected


def test_settings_from_arm_defaults_and_minutes():
    s = Settings.of({"drainTimeoutInMinutes": 5, "nodeSoakDurationInMinutes": 2, "undrainableNodeBehavior": "Cordon"},
                    minute=0.5)
    assert (s.max_surge, s.max_unavailable, s.drain_timeout, s.soak, s.undrainable) == ("10%", "0", 2.5, 1.0, "Cordon")
    d = Settings.of(None)
    assert (d.max_surge, d.drain_timeout, d.soak, d.undrainable) == ("10%", 1800.0, 0.0, "Schedule")
    with pytest.raises(ValueError):
        surge.nodes("ten", 3)


def _run(count: int, surge_n: int, unavailable: int) -> list[Step]:
    """The steps a pool of `count` old nodes (indexes 0..count-1) goes through when every step
    works, simulating what `upgrade` does with each."""
    old, new = list(range(count)), []
    steps = []
    for _ in range(10 * count + 10):
        step = plan(old, new, count=count, surge=surge_n, unavailable=unavailable,
                    next_index=max(old + new, default=-1) + 1)
        if not step:
            return steps
        steps.append(step)
        new += step.add
        for i in step.drain:  # reimaged in place: same index, new version
            old.remove(i)
            new.append(i)
        new = [i for i in new if i not in step.remove]
        assert len(old) + len(new) >= count - unavailable  # never fewer in service than allowed
    raise AssertionError("no end")


def test_three_nodes_one_surge_node_as_aks():
    steps = _run(3, 1, 0)
    assert steps == [Step(add=[3], drain=[0]), Step(drain=[1]), Step(drain=[2]), Step(remove=[3])]


def test_max_surge_batches_and_the_surge_nodes_go_last():
    steps = _run(10, 4, 0)
    assert [s.add for s in steps if s.add] == [[10, 11, 12, 13]]
    assert [s.drain for s in steps if s.drain] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert steps[-1] == Step(remove=[10, 11, 12, 13])


def test_max_unavailable_without_surge_upgrades_in_place():
    steps = _run(4, 0, 2)
    assert steps == [Step(drain=[0, 1]), Step(drain=[2, 3])]


def test_surge_and_unavailable_add_up():
    steps = _run(6, 1, 1)
    assert steps[0] == Step(add=[6], drain=[0, 1])
    assert steps[-1] == Step(remove=[6])


def test_resumes_from_the_nodes_as_they_are():
    # interrupted after the surge node came and node 0 was upgraded: no second surge node
    assert plan([1, 2], [0, 3], count=3, surge=1, unavailable=0, next_index=4) == Step(drain=[1])
    # every node upgraded, the surge node still there
    assert plan([], [0, 1, 2, 3], count=3, surge=1, unavailable=0, next_index=4) == Step(remove=[3])
    assert not plan([], [0, 1, 2], count=3, surge=1, unavailable=0, next_index=3)
