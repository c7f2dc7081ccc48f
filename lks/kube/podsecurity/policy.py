"""A namespace's Pod Security policy, read from its labels as upstream's `api.PolicyToEvaluate`
(`pod-security.kubernetes.io/{enforce,audit,warn}` and their `-version`s), and the evaluation of
a pod against one level and version (upstream's `checkRegistry.EvaluatePod` and
`AggregateCheckResults`). `lks.kube.admission.podsecurity` applies the result to requests.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from lks.kube.errors import Cause
from lks.kube.podsecurity import checks
from lks.kube.typevalidation import field

PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
LEVELS = ("privileged", "baseline", "restricted")
LATEST = -1  # the minor of "latest"
_VERSION = re.compile(r"^v1\.(0|[1-9][0-9]*)$")


@dataclass(frozen=True, slots=True)
class LevelVersion:
    level: str = "privileged"
    minor: int = LATEST

    def __str__(self) -> str:
        return f"{self.level}:{'latest' if self.minor == LATEST else f'v1.{self.minor}'}"


@dataclass(frozen=True, slots=True)
class Policy:
    enforce: LevelVersion = LevelVersion()
    audit: LevelVersion = LevelVersion()
    warn: LevelVersion = LevelVersion()

    @property
    def privileged(self) -> bool:
        return all(lv.level == "privileged" for lv in (self.enforce, self.audit, self.warn))


DEFAULT = Policy()  # no labels: privileged:latest for every mode, as upstream's default configuration


def _level(value: str) -> tuple[str | None, str]:
    return (value, "") if value in LEVELS else (None, f"must be one of {', '.join(LEVELS)}")


def _version(value: str) -> tuple[int | None, str]:
    if value in ("", "latest"):
        return LATEST, ""
    m = _VERSION.match(value)
    return (int(m.group(1)), "") if m else (None, 'must be "latest" or "v1.x"')


def from_labels(labels: dict[str, str] | None) -> tuple[Policy, list[Cause]]:
    """The policy the labels ask for, with a field error for each bad value. A bad enforce level
    enforces restricted (fail closed); a bad audit or warn level is privileged (fail open)."""
    labels = labels or {}
    causes: list[Cause] = []
    got: dict[str, LevelVersion] = {}
    explicit: dict[str, tuple[bool, bool]] = {}
    for mode in MODES:
        lv = DEFAULT.enforce
        level_set = version_set = False
        level, minor = lv.level, lv.minor
        if (text := labels.get(PREFIX + mode)) is not None:
            parsed, err = _level(text)
            if err:
                causes.append(field.invalid(f"metadata.labels[{PREFIX + mode}]", text, err))
                parsed = "restricted" if mode == "enforce" else "privileged"
            else:
                level_set = True
            level = parsed
        if (text := labels.get(f"{PREFIX}{mode}-version")) is not None:
            version_set = True
            parsed_minor, err = _version(text)
            if err:
                causes.append(field.invalid(f"metadata.labels[{PREFIX}{mode}-version]", text, err))
                parsed_minor = LATEST
            minor = parsed_minor
        got[mode] = LevelVersion(level, minor)
        explicit[mode] = (level_set, version_set)
    # warn defaults to a stricter enforce level (and its version), as upstream
    enforce, warn = got["enforce"], got["warn"]
    if not explicit["warn"][0] and explicit["enforce"][0] and LEVELS.index(enforce.level) > LEVELS.index(warn.level):
        got["warn"] = LevelVersion(enforce.level, warn.minor if explicit["warn"][1] else enforce.minor)
    return Policy(got["enforce"], got["audit"], got["warn"]), causes


@functools.cache
def _checks_for(level: str, minor: int) -> tuple[checks.CheckFn, ...]:
    """upstream's registry at one level and version: the baseline checks (less, at the
    restricted level, those a restricted one overrides), then the restricted ones, each group
    ordered by ID."""
    active = [(c, v) for c in checks.CHECKS if (v := c.at(minor)) is not None]
    baseline = sorted(((c.id, v[1]) for c, v in active if c.level == checks.BASELINE), key=lambda p: p[0])
    if level == checks.BASELINE:
        return tuple(fn for _, fn in baseline)
    restricted = sorted(((c.id, v[1], v[2]) for c, v in active if c.level == checks.RESTRICTED), key=lambda p: p[0])
    overridden = {o for _, _, overrides in restricted for o in overrides}
    return tuple([fn for cid, fn in baseline if cid not in overridden] + [fn for _, fn, _ in restricted])


def evaluate(lv: LevelVersion, meta: dict[str, Any], spec: dict[str, Any], *,
             max_minor: int = checks.MAX_MINOR) -> list[checks.Result]:
    """What the pod violates at this level and version (empty: allowed). `max_minor` is the
    newest policy version the cluster knows (its Kubernetes minor: upstream's emulation
    version); "latest" and later versions evaluate as it."""
    if lv.level == "privileged":
        return []
    top = min(max_minor, checks.MAX_MINOR)
    minor = top if lv.minor == LATEST or lv.minor > top else lv.minor
    return [r for fn in _checks_for(lv.level, minor) if (r := fn(meta, spec)) is not None]


def reasons(results: list[checks.Result]) -> str:
    """`host ports, privileged`: the short form, for a namespace's existing pods."""
    return ", ".join(r.reason or "unknown forbidden reason" for r in results)


def details(results: list[checks.Result]) -> str:
    """`hostPort (container "x" uses hostPort 80), privileged (...)`: the form for one pod."""
    return ", ".join(f"{r.reason or 'unknown forbidden reason'}{f' ({r.detail})' if r.detail else ''}"
                     for r in results)
