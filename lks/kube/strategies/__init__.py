"""Per-resource strategies. `for_resource` picks the one for a resource type; types without
special behaviour get the default `Strategy`."""

from __future__ import annotations

from lks.kube import validation
from lks.kube.strategies.apiservice import APIServiceStrategy
from lks.kube.strategies.base import Obj, StatusStrategy, Strategy, spec_changed
from lks.kube.strategies.certificates import CSRStrategy
from lks.kube.strategies.namespace import NamespaceStrategy

__all__ = ["Obj", "StatusStrategy", "Strategy", "for_resource", "spec_changed"]


class _NoGeneration(Strategy):
    tracks_generation = False


class _Pod(Strategy):
    return_deleted_object = True

    def grace_period(self, obj: Obj, requested: int | None) -> int | None:
        # upstream's pod CheckGracefulDelete: unscheduled or finished pods go at once
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        period = requested if requested is not None else spec.get("terminationGracePeriodSeconds", 30)
        if not spec.get("nodeName") or status.get("phase") in ("Failed", "Succeeded"):
            return 0
        return 1 if period < 0 else period

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        super().prepare_for_update(obj, old)
        # Priority admission keeps the priority an update leaves out; upstream mutates before
        # it validates, lks validates first, so the old values come back here
        spec, old_spec = obj.get("spec"), old.get("spec") or {}
        if isinstance(spec, dict):
            for key in ("priority", "preemptionPolicy"):
                if key not in spec and key in old_spec:
                    spec[key] = old_spec[key]


class _ReturnsObjectNoGeneration(_NoGeneration):
    return_deleted_object = True


class _Node(_NoGeneration):
    def prepare_for_create(self, obj: Obj) -> None:
        """Nodes allow every field, status included, to be set on create (upstream's
        nodeStrategy), so a kubelet registers with its status in one write."""


class _Service(_ReturnsObjectNoGeneration):
    name_rule = staticmethod(validation.dns1035_label)


class _PathSegmentNamed(_NoGeneration):
    name_rule = staticmethod(validation.path_segment)
    allow_create_on_update = True


class _CreateOnUpdate(_NoGeneration):
    allow_create_on_update = True


# (group, resource) -> strategy class; everything else uses Strategy.
_STRATEGIES: dict[tuple[str, str], type[Strategy]] = {
    ("", "namespaces"): NamespaceStrategy,
    ("", "pods"): _Pod,
    ("", "services"): _Service,
    ("", "serviceaccounts"): _ReturnsObjectNoGeneration,
    ("storage.k8s.io", "storageclasses"): _ReturnsObjectNoGeneration,
    ("", "nodes"): _Node,
    ("", "persistentvolumes"): _NoGeneration,
    ("", "persistentvolumeclaims"): _NoGeneration,
    ("", "resourcequotas"): _NoGeneration,
    ("", "endpoints"): _CreateOnUpdate,
    ("", "events"): _CreateOnUpdate,
    ("events.k8s.io", "events"): _CreateOnUpdate,
    ("coordination.k8s.io", "leases"): _CreateOnUpdate,
    ("rbac.authorization.k8s.io", "roles"): _PathSegmentNamed,
    ("rbac.authorization.k8s.io", "rolebindings"): _PathSegmentNamed,
    ("rbac.authorization.k8s.io", "clusterroles"): _PathSegmentNamed,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): _PathSegmentNamed,
    ("certificates.k8s.io", "certificatesigningrequests"): CSRStrategy,
    ("apiregistration.k8s.io", "apiservices"): APIServiceStrategy,
}


def _crd_strategy() -> type[Strategy]:
    from lks.kube.crds import CRDStrategy  # crds builds on this package

    return CRDStrategy


def for_resource(group: str, resource: str, *, namespaced: bool, has_status: bool) -> Strategy:
    if (group, resource) == ("apiextensions.k8s.io", "customresourcedefinitions"):
        return _crd_strategy()(namespaced=namespaced, has_status=has_status)
    cls = _STRATEGIES.get((group, resource), Strategy)
    return cls(namespaced=namespaced, has_status=has_status)
