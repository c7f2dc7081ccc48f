"""APIService rules of upstream's `kube-aggregator/pkg/apis/apiregistration/validation`: a group
(a DNS subdomain; empty only for the legacy `v1`), a DNS-1035 version, priorities in range, and
TLS settings that fit the kind of APIService (a local one has none; a Service-backed one names
the Service and does not both skip verification and carry a caBundle). The name (`version.group`)
is the strategy's rule (`lks.kube.strategies.apiservice`).
"""

from __future__ import annotations

import base64
import binascii

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import dns_subdomain, get, mapping


def _ca_bytes(spec: dict) -> int:
    try:
        return len(base64.b64decode(spec.get("caBundle") or "", validate=True))
    except (binascii.Error, ValueError):
        return len(spec.get("caBundle") or "")


def validate_apiservice(obj: dict) -> list[Cause]:
    spec = mapping(obj, "spec")
    group, version = get(spec, "group", default="") or "", get(spec, "version", default="") or ""
    causes: list[Cause] = []
    if not group and version != "v1":
        causes.append(field.required("spec.group", "only v1 may have an empty group and it better be legacy kube"))
    if group:
        causes += dns_subdomain(group, "spec.group")
    causes += [field.invalid("spec.version", version, m) for m in validation.dns1035_label(version)]
    gpm, vp = get(spec, "groupPriorityMinimum", default=0) or 0, get(spec, "versionPriority", default=0) or 0
    if not 0 < gpm <= 20000:
        causes.append(field.invalid("spec.groupPriorityMinimum", gpm, "must be positive and less than 20000"))
    if not 0 < vp <= 1000:
        causes.append(field.invalid("spec.versionPriority", vp, "must be positive and less than 1000"))
    insecure = bool(spec.get("insecureSkipTLSVerify"))
    service = spec.get("service")
    if service is None:
        if spec.get("caBundle"):
            causes.append(field.invalid("spec.caBundle", f"{_ca_bytes(spec)} bytes", "local APIServices may not have a caBundle"))
        if insecure:
            causes.append(field.invalid("spec.insecureSkipTLSVerify", True,
                                        "local APIServices may not have insecureSkipTLSVerify"))
        return causes
    if not get(service, "namespace"):
        causes.append(field.required("spec.service.namespace"))
    if not get(service, "name"):
        causes.append(field.required("spec.service.name"))
    if insecure and spec.get("caBundle"):
        causes.append(field.invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present"))
    return causes
