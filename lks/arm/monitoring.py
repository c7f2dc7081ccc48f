"""AKS's `azureMonitorProfile` (managed Prometheus): `metrics.enabled` and the
`kubeStateMetrics` allow-lists, kept as AKS shows them. Enabling it starts nothing: lks has no
Azure Monitor workspace to send to. What a Prometheus of the user's scrapes instead is each
hosted API server's `/metrics` (`lks.observability`) and the management endpoint's own.
"""

from __future__ import annotations

import re
from typing import Any

from lks.arm.errors import invalid_parameter

Doc = dict[str, Any]
# kube-state-metrics' --metric-labels-allowlist: `resource=[name,...],...` (`*` for any)
_ALLOWLIST = re.compile(r"^$|^[a-z0-9.]+=\[[^\[\]]*\](,[a-z0-9.]+=\[[^\[\]]*\])*$")


def profile(props_in: Doc, old_props: Doc) -> Doc | None:
    """The stored azureMonitorProfile of a PUT (absent: the one before)."""
    if "azureMonitorProfile" not in props_in:
        return old_props.get("azureMonitorProfile")
    value = props_in["azureMonitorProfile"]
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_parameter("The value of parameter azureMonitorProfile is invalid.", "azureMonitorProfile")
    out = {k: v for k, v in value.items() if k != "metrics"}
    metrics = value.get("metrics")
    if metrics is None:
        return out
    if not isinstance(metrics, dict) or not isinstance(metrics.get("enabled"), bool):
        raise invalid_parameter("The value of parameter azureMonitorProfile.metrics.enabled is invalid: it must be "
                                "true or false.", "azureMonitorProfile.metrics.enabled")
    shown: Doc = {"enabled": metrics["enabled"]}
    ksm = metrics.get("kubeStateMetrics")
    if ksm is not None:
        if not isinstance(ksm, dict):
            raise invalid_parameter("The value of parameter azureMonitorProfile.metrics.kubeStateMetrics is invalid.",
                                    "azureMonitorProfile.metrics.kubeStateMetrics")
        shown["kubeStateMetrics"] = {}
        for field in ("metricLabelsAllowlist", "metricAnnotationsAllowList"):
            text = ksm.get(field) or ""
            if not isinstance(text, str) or not _ALLOWLIST.match(text):
                raise invalid_parameter(
                    f"The value of parameter azureMonitorProfile.metrics.kubeStateMetrics.{field} is invalid: "
                    f"'{text}'. It must look like 'namespaces=[k8s-label-1,k8s-label-n],pods=[app]'.",
                    f"azureMonitorProfile.metrics.kubeStateMetrics.{field}")
            shown["kubeStateMetrics"][field] = text
    out["metrics"] = shown
    return out
