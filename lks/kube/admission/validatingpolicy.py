"""ValidatingAdmissionPolicy admission (upstream's `admission/plugin/policy/validating`): every
create, update and delete is checked against the bound policies whose matchConstraints (and the
binding's matchResources) select it, with each binding's params, and each failed validation is
acted on as the binding's validationActions say: Deny refuses the request (422 Invalid, or the
validation's reason: `deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'p' with
binding 'b' denied request: failed expression: object.spec.replicas <= 5`), Warn adds a Warning
header, Audit records a `validation.policy.admission.k8s.io/validation_failure` audit annotation.

Policies and bindings are compiled and indexed by `lks.kube.policy.source` as they change; a
request looks up only the policies that can match its resource. Writes of the service's own
controllers are checked too, as upstream's controllers' requests are, as their identities
(`lks.controllers.identities`); the API server's own writes as `system:apiserver`.

Audit annotations (the policies' `auditAnnotations` as `<policy>/<key>`, and Audit failures)
go to the request's audit event (`lks.kube.audit`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import orjson

from lks.kube import admission, audit, authn, authz, cel, conversion, errors, scale
from lks.kube.authn import APISERVER
from lks.kube.policy import evaluate, matching, params, projection
from lks.kube.policy.compiled import Binding, Policy
from lks.kube.policy.source import PolicySource

if TYPE_CHECKING:
    from lks.kube.catalog import Catalog
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

SERVICE_USER = APISERVER
_CODES = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422}
_NS_META = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
            "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "finalizers")
FAILURE_ANNOTATION = "validation.policy.admission.k8s.io/validation_failure"


@admission.plugin
class ValidatingAdmissionPolicyPlugin:
    ORDER = 40  # after the built-in plugins, before the webhooks, as upstream's chain

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.source = PolicySource(cluster)

    async def validate(self, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                       opts: WriteOptions) -> None:
        source = self.source
        if not source.started:
            await source.start()
        policies = source.candidates(reg.rt.resource)
        if policies:
            await _Request(self.cluster, operation, reg, obj, old, opts).dispatch(policies)

    async def connect(self, reg: Registry, namespace: str, name: str, options: Obj, opts: WriteOptions) -> None:
        """CONNECT (pods/exec ...): policies see its options object (PodExecOptions ...) as upstream's."""
        if not self.source.started:
            await self.source.start()
        policies = self.source.candidates(reg.rt.resource)
        if policies:
            await _Request(self.cluster, "CONNECT", reg, options, None, opts, target=(namespace, name)).dispatch(policies)


class _Request:
    """One admission request checked against the candidate policies (upstream's dispatcher)."""

    def __init__(self, cluster: Cluster, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                 opts: WriteOptions, *, target: tuple[str, str] | None = None):
        """`target`: (namespace, name) of a CONNECT, whose object (its options) names neither."""
        self.cluster, self.reg, self.opts = cluster, reg, opts
        rt = reg.rt
        meta = (obj if obj is not None else old or {}).get("metadata") or {}
        self.namespace, self.name = target or (meta.get("namespace") or "", meta.get("name") or "")
        own_ns = self.name if rt.resource == "namespaces" and not opts.subresource else self.namespace
        kind = obj["kind"] if target is not None and obj is not None else rt.kind
        paths = cluster.scale_paths(rt) if opts.subresource == "scale" else None
        if paths is not None:  # a write through `scale` is checked as the Scale it is, as upstream
            obj, old = (scale.to_scale(o, paths) if o is not None else None for o in (obj, old))
            kind = "Scale"
        self._views = paths is not None or target is not None  # objects of their own kind: never converted
        self.match = matching.Request(operation, rt.group, rt.version, rt.resource, opts.subresource, own_ns,
                                      self.name, obj, old, self._equivalents, kind=kind)
        self.user = opts.user or authn.ACTING.get() or SERVICE_USER  # a controller's write: its identity
        self.denied: list[tuple[Policy, Binding | None, evaluate.Decision]] = []
        self.annotations: dict[str, list[str]] = {}
        self._ns_obj: Obj | None = None
        self._versions: dict[str, tuple[Obj | None, Obj | None]] = {}

    def _equivalents(self) -> list[tuple[str, str, str, str]]:
        return _equivalents(self.cluster.catalog, self.reg.rt.storage_prefix)

    async def _namespace(self) -> Obj | None:
        name = self.namespace
        if not name:
            return None
        reg = self.cluster.registry("", "v1", "namespaces")
        key = reg.key(None, name)
        obj = (await reg.cache()).objects.get(key)
        if obj is None:
            kv = await self.cluster.store.get(key)
            obj = reg.decode(kv) if kv is not None else None
        return obj

    async def dispatch(self, policies: list[Policy]) -> None:
        m = self.match
        if m.resource == "namespaces" and not m.subresource:
            if m.operation in ("CREATE", "UPDATE") and m.obj is not None:
                m.namespace_labels = (m.obj.get("metadata") or {}).get("labels") or {}
            else:
                m.namespace_labels = ((m.old or {}).get("metadata") or {}).get("labels") or {}
        else:
            self._ns_obj = await self._namespace()
            if self._ns_obj is not None:
                m.namespace_labels = self._ns_obj["metadata"].get("labels") or {}
        for policy in policies:
            matched, as_ = policy.criteria.matches(m)
            if not matched:
                continue
            for binding in policy.ordered:
                if binding.criteria is not None and not binding.criteria.matches(m)[0]:
                    continue
                try:
                    found = await params.collect(self.cluster, policy.param_kind, binding.param_ref, self.namespace)
                except params.ConfigError as err:
                    self._config_error(policy, binding, f"failed to configure binding: {err}")
                    continue
                for param in found:
                    await self._evaluate(policy, binding, param, as_)
            self._publish(policy)
        if self.denied:
            raise self._error()

    def _config_error(self, policy: Policy, binding: Binding | None, message: str) -> None:
        if policy.failure_policy != "Ignore":
            self.denied.append((policy, binding, evaluate.Decision(True, message, error=True)))

    def _activation(self, policy: Policy, param: Obj | None, as_: tuple[str, str, str, str]) -> Obj:
        """The names the policy's expressions use, with only what they read of the objects."""
        m, rt, roots = self.match, self.reg.rt, policy.roots
        out: Obj = {}
        obj, old = self._versioned(as_)
        for name, value in (("object", obj), ("oldObject", old), ("params", param)):
            if name in roots:
                out[name] = projection.project(value, policy.reads.get(name))
        if "request" in roots:
            out["request"] = self._admission_request(as_)
        if "namespaceObject" in roots:
            out["namespaceObject"] = _namespace_object(self._ns_obj) if rt.kind != "Namespace" else None
        if "authorizer" in roots:
            out["authorizer"] = cel.Authorizer(
                lambda check: authz.cel_check(self.cluster, self.user, check),
                request_resource=cel.Check(group=rt.group, resource=rt.resource, subresource=m.subresource,
                                           namespace=self.namespace, name=self.name))
        return out

    def _versioned(self, as_: tuple[str, str, str, str]) -> tuple[Obj | None, Obj | None]:
        """The object and old object in the version the policy matched (upstream's
        VersionedAttributes: another group's equivalent, or the request's version of what is
        stored in another)."""
        if self._views:
            return self.match.obj, self.match.old
        api_version = f"{as_[0]}/{as_[1]}" if as_[0] else as_[1]
        out = self._versions.get(api_version)
        if out is None:
            out = self._versions[api_version] = tuple(  # type: ignore[assignment]
                o if o is None or o.get("apiVersion") == api_version else conversion.convert(o, api_version)
                for o in (self.match.obj, self.match.old))
        return out

    def _admission_request(self, as_: tuple[str, str, str, str]) -> Obj:
        m, rt = self.match, self.reg.rt
        out: Obj = {
            "uid": "", "kind": {"group": as_[0], "version": as_[1], "kind": as_[3]},
            "resource": {"group": as_[0], "version": as_[1], "resource": as_[2]},
            "requestKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
            "requestResource": {"group": rt.group, "version": rt.version, "resource": rt.resource},
            "name": self.name, "namespace": self.namespace, "operation": m.operation,
            "userInfo": self.user.info(), "dryRun": self.opts.dry_run,
        }
        options = admission.operation_options(m.operation, self.opts)
        if options is not None:  # upstream's connect attributes carry none
            out["options"] = options
        if m.subresource:
            out["subResource"] = out["requestSubResource"] = m.subresource
        return out

    async def _evaluate(self, policy: Policy, binding: Binding, param: Obj | None,
                        as_: tuple[str, str, str, str]) -> None:
        result = await evaluate.evaluate(policy, self._activation(policy, param, as_))
        # failed validations (errors under failurePolicy Fail included) get the binding's
        # actions; audit annotations that fail deny whatever the actions
        for decision in result.decisions:
            for action in binding.actions:
                if action == "Deny":
                    self.denied.append((policy, binding, decision))
                elif action == "Warn":
                    self.opts.warnings.append(f"Validation failed for ValidatingAdmissionPolicy '{policy.name}' "
                                              f"with binding '{binding.name}': {decision.message}")
                elif action == "Audit":
                    self._audit_failure(policy, binding, decision)
        self.denied += [(policy, binding, failure) for failure in result.failures]
        for key, value in result.annotations:
            values = self.annotations.setdefault(key, [])
            if value[:10240] not in values:
                values.append(value[:10240])

    def _audit_failure(self, policy: Policy, binding: Binding, decision: evaluate.Decision) -> None:
        value = orjson.dumps([{"message": decision.message, "policy": policy.name, "binding": binding.name,
                               "expressionIndex": decision.index, "validationActions": list(binding.actions)}])
        audit.annotate(FAILURE_ANNOTATION, value.decode())

    def _publish(self, policy: Policy) -> None:
        for key, values in self.annotations.items():
            audit.annotate(f"{policy.name}/{key}", ", ".join(values))
        self.annotations = {}

    def _error(self) -> errors.APIError:
        """The first denial, as upstream words it: admission.NewForbidden with the reason's code."""
        policy, binding, decision = self.denied[0]
        if binding is not None:
            message = (f"ValidatingAdmissionPolicy '{policy.name}' with binding '{binding.name}' "
                       f"denied request: {decision.message}")
        else:
            message = f"ValidatingAdmissionPolicy '{policy.name}' denied request: {decision.message}"
        rt = self.reg.rt
        qualified = errors.qualified(rt.resource, rt.group)
        reason = decision.reason or "Invalid"
        text = f'{qualified} "{self.name}" is forbidden: {message}' if self.name else f"{qualified} is forbidden: {message}"
        details: Obj = {}
        if self.name:
            details["name"] = self.name
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.resource
        details["causes"] = [{"message": message}]
        return errors.APIError(_CODES.get(reason, 422), reason, text, details=details)


@functools.lru_cache(maxsize=512)
def _equivalents(catalog: Catalog, prefix: str) -> list[tuple[str, str, str, str]]:
    """The types served from one storage prefix (upstream's equivalent resources), per catalog
    (a CRD change makes a new one)."""
    return [(t.group, t.version, t.resource, t.kind) for t in catalog.all() if prefix and t.storage_prefix == prefix]


def _namespace_object(ns: Obj | None) -> Obj | None:
    """What `namespaceObject` shows of a namespace (upstream's CreateNamespaceObject)."""
    if ns is None:
        return None
    meta = ns.get("metadata") or {}
    return {"metadata": {k: meta[k] for k in _NS_META if k in meta},
            "spec": ns.get("spec") or {}, "status": ns.get("status") or {}}
