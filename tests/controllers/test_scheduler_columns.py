"""The numpy path of the scheduling cycle (`columns`) chooses exactly what the node-by-node
path chooses: two worlds built alike, one with the numpy path turned off, schedule the same
random pods over random nodes and must agree pod by pod."""

from __future__ import annotations

import random

import pytest

from lks.controllers.scheduler import columns
from lks.kube import selectors

from .test_scheduler import World, node, pod


def _world(seed: int, groups: list[selectors.LabelSelector]) -> World:
    rnd = random.Random(seed)
    nodes = []
    for i in range(rnd.choice([5, 40, 150, 260])):
        extra = {}
        if rnd.random() < 0.05:
            extra["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
        if rnd.random() < 0.03:
            extra["unschedulable"] = True
        nodes.append(node(f"n{i}", cpu=rnd.choice(["2", "3860m", "8"]), mem=rnd.choice(["4Gi", "13611048Ki", "32Gi"]),
                          pods=rnd.choice(["30", "110"]), zone=f"z{rnd.randrange(3)}", **extra))

    def default_selector(p):
        app = p.labels.get("app")
        return groups[int(app[1:])] if app else None

    return World(nodes, default_selector=default_selector)


@pytest.mark.parametrize("seed", range(12))
def test_the_numpy_path_chooses_as_the_node_by_node_path(seed, monkeypatch):
    groups = [selectors.LabelSelector([selectors.Requirement("app", "=", frozenset([f"g{i}"]))]) for i in range(3)]
    fast, slow = _world(seed, groups), _world(seed, groups)
    rnd = random.Random(seed)
    applies = columns.applies
    used = 0
    for i in range(400):
        labels = {"app": f"g{rnd.randrange(3)}"} if rnd.random() < 0.8 else {}
        cpu, mem = rnd.choice([("100m", "128Mi"), ("250m", "64Mi"), (None, None), ("1", None), (None, "1Gi")])
        p = pod(f"p{i}", cpu, mem, labels=labels)
        monkeypatch.setattr(columns, "applies", applies)
        used += applies(fast.fw, fast.fw.prepare(fast.info(p), {}), fast.fw._soft_spread(fast.info(p)))
        try:
            a = fast.place(p)
        except Exception as err:  # noqa: BLE001 - both must fail alike
            a = type(err).__name__
        monkeypatch.setattr(columns, "applies", lambda *_: False)
        try:
            b = slow.place(p)
        except Exception as err:  # noqa: BLE001
            b = type(err).__name__
        assert a == b, f"pod {i}: numpy path chose {a}, node by node {b}"
        assert fast.fw.next_start == slow.fw.next_start
    assert used > 300  # the numpy path did run
