"""Expanders: which scale-up option to take (upstream's `expander` flag; AKS's profile key).

`random`, `most-pods`, `least-waste`, `least-nodes` and `priority` (the
`cluster-autoscaler-priority-expander` ConfigMap's `priorities`: `<n>: [<regex>, ...]`, the
highest-numbered match wins); a comma-separated chain filters with each in turn, and whatever
ties at the end is decided at random, as upstream does.
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING

from lks import safeyaml

if TYPE_CHECKING:
    from lks.autoscaler.scaleup import Option

CONFIGMAP = "cluster-autoscaler-priority-expander"
NAMES = ("random", "most-pods", "least-waste", "least-nodes", "priority")


def parse_priorities(text: str | None) -> list[tuple[int, list[re.Pattern[str]]]]:
    """The ConfigMap's `priorities` as (priority, patterns), highest first; malformed: none."""
    if not text:
        return []
    try:
        data = safeyaml.load(text)
    except Exception:  # upstream logs the bad ConfigMap and keeps every option
        return []
    out = []
    if isinstance(data, dict):
        for prio, patterns in data.items():
            try:
                compiled = [re.compile(str(p)) for p in (patterns or [])]
                out.append((int(prio), compiled))
            except (ValueError, re.error):
                continue
    return sorted(out, key=lambda e: -e[0])


def _best(options: list[Option], key) -> list[Option]:
    top = max(key(o) for o in options)
    return [o for o in options if key(o) == top]


def _filter(name: str, options: list[Option], priorities: str | None) -> list[Option]:
    if name == "most-pods":
        return _best(options, lambda o: len(o.pods))
    if name == "least-waste":
        return _best(options, lambda o: -o.waste)
    if name == "least-nodes":
        return _best(options, lambda o: -o.count)
    if name == "priority":
        for _prio, patterns in parse_priorities(priorities):
            # upstream's regexp.MatchString: a match anywhere in the node group's id (the VMSS name)
            matched = [o for o in options if any(p.search(o.group.id) for p in patterns)]
            if matched:
                return matched
        return options
    return options  # random: everything stays for the final draw


def choose(expander: str, options: list[Option], *, priorities: str | None, rng: random.Random) -> Option:
    left = sorted(options, key=lambda o: o.group.name)
    for name in (n.strip() for n in expander.split(",")):
        left = _filter(name, left, priorities)
        if len(left) == 1:
            return left[0]
    return rng.choice(left)
