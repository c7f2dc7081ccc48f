"""Served APIs across an upgrade, and AKS's deprecated-API gate
(`stop-cluster-upgrade-api-breaking-changes.md`).

A minor upgrade of the control plane to 1.26 or later is refused while a client wrote, within
the last 12 hours, through an API version the target minor no longer serves: 400
`ValidationError`, subcode `UpgradeBlockedOnDeprecatedAPIUsage`, with AKS's message listing
each API (`group.resource.version`), when it was last seen and the minor that removes it. The
cluster's `upgradeSettings.overrideSettings` (`forceUpgrade: true` with an `until` in the future)
lets the upgrade through. Which versions a minor serves, and when each prerelease version goes,
is the API server's knowledge (`lks.kube.catalog`, `lks.kube.lifecycle`); the uses come from
`lks.kube.apiusage`. The managed-cluster PUT (`lks.arm.managedclusters`) calls `check_upgrade`
before the upgrade operation starts; `blockers` lists the same findings for a what-if.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lks.arm.errors import ARMError, invalid_parameter
from lks.kube import apiusage, lifecycle

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Doc = dict[str, Any]

GATED_FROM = (1, 26)  # AKS checks upgrades to this minor and later
SUBCODE = "UpgradeBlockedOnDeprecatedAPIUsage"
_MESSAGE = ("Control Plane upgrade is blocked due to recent usage of a Kubernetes API deprecated in the specified "
            "version. Please refer to https://kubernetes.io/docs/reference/using-api/deprecation-guide to migrate "
            "the usage. To bypass this error, set enable-force-upgrade in upgradeSettings.overrideSettings. "
            "Bypassing this error without migrating usage will result in the deprecated Kubernetes API calls failing. "
            "Usage details: ")


def upgrade_settings(value: Any) -> Doc:
    """The managed cluster's `upgradeSettings` as stored: `overrideSettings.forceUpgrade` a
    boolean, `overrideSettings.until` an RFC 3339 date-time (kept as sent); InvalidParameter
    otherwise."""
    if not isinstance(value, dict):
        raise invalid_parameter(f"The value of parameter upgradeSettings is invalid: '{value}'.", "upgradeSettings")
    settings = dict(value)
    override = settings.get("overrideSettings")
    if override is None:
        return settings
    target = "upgradeSettings.overrideSettings"
    if not isinstance(override, dict):
        raise invalid_parameter(f"The value of parameter {target} is invalid: '{override}'.", target)
    force = override.get("forceUpgrade")
    if force is not None and not isinstance(force, bool):
        raise invalid_parameter(f"The value of parameter {target}.forceUpgrade is invalid: '{force}'.",
                                f"{target}.forceUpgrade")
    until = override.get("until")
    if until is not None and _timestamp(until) is None:
        raise invalid_parameter(f"The value of parameter {target}.until is invalid: '{until}'. It must be a "
                                "date-time such as 2026-12-31T13:00:00Z.", f"{target}.until")
    settings["overrideSettings"] = dict(override)
    return settings


def force_upgrade(settings: Doc | None, now: float) -> bool:
    """Whether the override lets an upgrade past the gate at `now`: `forceUpgrade` with an
    `until` still ahead (AKS: "only effective if until is set")."""
    override = (settings or {}).get("overrideSettings") or {}
    until = _timestamp(override.get("until"))
    return override.get("forceUpgrade") is True and until is not None and until > now


async def blockers(cluster: Cluster, *, current: str, target: str) -> list[str]:
    """AKS's line for each API that the upgrade from `current` to `target` stops serving and that
    was written through in the last 12 hours, in the table's order."""
    cur, tgt = lifecycle.minor_key(current), lifecycle.minor_key(target)
    if tgt <= cur or tgt < GATED_FROM:  # patch upgrades are not checked
        return []
    seen = await cluster.api_usage.seen()
    found = []
    for (group, version, resource), life in lifecycle.removed_between(current, target):
        agents = seen.get(apiusage.api_key(group, version, resource))
        if not agents:
            continue
        last = datetime.fromtimestamp(max(agents.values()), UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
        api = ".".join(p for p in (group, resource, version) if p)
        found.append(f"usage has been detected on API {api}, and was recently seen at: {last}, which will be "
                     f"removed in {life.removed[0]}.{life.removed[1]}")
    return found


async def check_upgrade(cluster: Cluster | None, *, current: str, target: str, settings: Doc | None,
                        now: float) -> None:
    """Raise AKS's `UpgradeBlockedOnDeprecatedAPIUsage` error if the control plane's move from
    `current` to `target` would drop an API still in use and no override is in force."""
    if cluster is None or force_upgrade(settings, now):
        return
    found = await blockers(cluster, current=current, target=target)
    if not found:
        return
    # hashicorp/go-multierror's text, as AKS's message carries it
    head = "1 error occurred" if len(found) == 1 else f"{len(found)} errors occurred"
    details = f"{head}:\n" + "".join(f"\t* {line}\n" for line in found) + "\n"
    raise ARMError("ValidationError", _MESSAGE + details, 400, subcode=SUBCODE)


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
