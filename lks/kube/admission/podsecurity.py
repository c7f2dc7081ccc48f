"""Pod Security admission (upstream's `pod-security-admission/admission`): the namespace's
`pod-security.kubernetes.io/*` labels choose a level and version per mode. A pod that violates
the enforce level is 403 `violates PodSecurity "restricted:latest": ...`; one that violates the
warn level gets a `would violate PodSecurity ...` warning, and the audit level an audit
annotation (`lks.kube.audit`). Workloads that create pods (Deployments, Jobs, ...) are checked
by their pod template for warn and audit only, as upstream.

Updates of a pod are checked only when what the policies look at can change (images, seccomp
annotations, ephemeral containers: upstream's `isSignificantPodUpdate`). Namespaces' labels are
validated, and a namespace newly enforcing a stricter level warns about its existing pods that
violate it. No namespace, user or runtime class is exempt: upstream's and AKS's default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import admission, audit, errors
from lks.kube.podsecurity import policy

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

_IGNORED_POD_SUBRESOURCES = {"exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"}
# resource -> path of its pod template (upstream's DefaultPodSpecExtractor)
_TEMPLATES = {
    ("", "replicationcontrollers"): ("spec", "template"),
    ("", "podtemplates"): ("template",),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
}
ENFORCE_POLICY = "pod-security.kubernetes.io/enforce-policy"
AUDIT_VIOLATIONS = "pod-security.kubernetes.io/audit-violations"
_PRIVILEGED = str(policy.LevelVersion())
_MAX_PODS = 3000  # existing pods checked against a new enforce level, as upstream


@admission.plugin
class PodSecurity:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    async def validate(self, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                       opts: WriteOptions) -> None:
        if obj is None or operation not in ("CREATE", "UPDATE"):
            return
        key = (reg.rt.group, reg.rt.resource)
        if key == ("", "pods"):
            if opts.subresource in _IGNORED_POD_SUBRESOURCES:
                return
            if operation == "UPDATE" and old is not None and not _significant(obj, old):
                return
            await self._pod(reg, obj, opts, obj.get("metadata") or {}, obj.get("spec") or {}, enforce=True)
        elif key in _TEMPLATES and not opts.subresource:
            template: Any = obj
            for step in _TEMPLATES[key]:
                template = template.get(step) if isinstance(template, dict) else None
            if isinstance(template, dict):
                await self._pod(reg, obj, opts, template.get("metadata") or {}, template.get("spec") or {},
                                enforce=False)
        elif key == ("", "namespaces") and not opts.subresource:
            await self._namespace(operation, reg, obj, old, opts)

    async def _pod(self, reg: Registry, obj: Obj, opts: WriteOptions, meta: Obj, spec: Obj, *, enforce: bool) -> None:
        ns = await self._namespace_object(obj["metadata"].get("namespace") or "")
        pol, causes = policy.from_labels(((ns or {}).get("metadata") or {}).get("labels"))
        if not causes and (pol.privileged or (not enforce and pol.warn.level == pol.audit.level == "privileged")):
            if enforce:
                audit.annotate(ENFORCE_POLICY, _PRIVILEGED)
            return
        if causes:
            audit.annotate("pod-security.kubernetes.io/error", "Failed to parse policy: " + _aggregate(causes))
        results: dict[policy.LevelVersion, list] = {}

        newest = self._minor()

        def evaluated(lv: policy.LevelVersion) -> list:
            if lv not in results:
                results[lv] = policy.evaluate(lv, meta, spec, max_minor=newest)
            return results[lv]

        denied = None
        if enforce:
            audit.annotate(ENFORCE_POLICY, str(pol.enforce))
            if found := evaluated(pol.enforce):
                name = obj["metadata"].get("name") or ""
                denied = errors.forbidden(reg.rt.resource, reg.rt.group, name,
                                          f'violates PodSecurity "{pol.enforce}": {policy.details(found)}')
        if found := evaluated(pol.audit):
            audit.annotate(AUDIT_VIOLATIONS, f'would violate PodSecurity "{pol.audit}": {policy.details(found)}')
        if denied is not None:
            raise denied
        if found := evaluated(pol.warn):
            opts.warnings.append(f'would violate PodSecurity "{pol.warn}": {policy.details(found)}')

    async def _namespace(self, operation: str, reg: Registry, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
        name = obj["metadata"].get("name") or ""
        new, causes = policy.from_labels(obj["metadata"].get("labels"))
        if operation == "CREATE":
            if causes:
                raise errors.invalid("Namespace", "", name, causes)
            return
        previous, old_causes = policy.from_labels(((old or {}).get("metadata") or {}).get("labels"))
        if causes and (not old_causes or [dict(c) for c in causes] != [dict(c) for c in old_causes]):
            raise errors.invalid("Namespace", "", name, causes)
        was, now = previous.enforce, new.enforce
        if now == was or now.level == "privileged":
            return
        if now.minor == was.minor and policy.LEVELS.index(now.level) <= policy.LEVELS.index(was.level):
            return
        opts.warnings.extend(await self._existing_pods(name, now))

    async def _existing_pods(self, namespace: str, lv: policy.LevelVersion) -> list[str]:
        """Upstream's EvaluatePodsInNamespace: one warning per distinct violation, naming the
        first pod (by name) that has it and how many others do, in sorted order; one pod per
        controller first, and at most `_MAX_PODS` pods."""
        pods_reg = self.cluster.registry("", "v1", "pods")
        cache = await pods_reg.cache()
        prefix = pods_reg.key(namespace, "")
        pods = [cache.objects[k] for k in sorted(cache.objects) if k.startswith(prefix)]
        seen: set[str] = set()
        first, rest = [], []
        for pod in pods:
            owner = next((r.get("uid") for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")),
                         None)
            if owner is not None and owner in seen:
                rest.append(pod)
                continue
            if owner is not None:
                seen.add(owner)
            first.append(pod)
        checked = (first + rest)[:_MAX_PODS]
        newest = self._minor()
        order: list[str] = []
        counts: dict[str, list] = {}  # warning -> [first pod name, count]
        for pod in checked:
            found = policy.evaluate(lv, pod["metadata"], pod.get("spec") or {}, max_minor=newest)
            if not found:
                continue
            warning = policy.reasons(found)
            name = pod["metadata"]["name"]
            if warning not in counts:
                counts[warning] = [name, 0]
                order.append(warning)
            elif name < counts[warning][0]:
                counts[warning][0] = name
            counts[warning][1] += 1
        out = []
        if len(checked) < len(pods):
            out.append(f"new PodSecurity enforce level only checked against the first {len(checked)} of {len(pods)} "
                       "existing pods")
        if order:
            out.append(f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level "{lv}"')
        decorated = []
        for warning in order:
            pod, n = counts[warning]
            others = "" if n == 1 else " (and 1 other pod)" if n == 2 else f" (and {n - 1} other pods)"
            decorated.append(f"{pod}{others}: {warning}")
        return out + sorted(decorated)

    def _minor(self) -> int:
        """The cluster's Kubernetes minor: the newest policy version it knows ("latest")."""
        return int(self.cluster.kubernetes_version.split(".")[1])

    async def _namespace_object(self, name: str) -> Obj | None:
        reg = self.cluster.registry("", "v1", "namespaces")
        return (await reg.cache()).objects.get(reg.key(None, name))


def _significant(pod: Obj, old: Obj) -> bool:
    """Whether an update changes what the policies check (upstream's isSignificantPodUpdate)."""
    spec, old_spec = pod.get("spec") or {}, old.get("spec") or {}
    ann, old_ann = pod["metadata"].get("annotations") or {}, old["metadata"].get("annotations") or {}

    def changed(c: Obj, o: Obj) -> bool:
        key = "container.seccomp.security.alpha.kubernetes.io/" + str(c.get("name"))
        return c.get("image") != o.get("image") or ann.get(key) != old_ann.get(key)

    for kind in ("containers", "initContainers"):
        new, before = spec.get(kind) or [], old_spec.get(kind) or []
        if len(new) != len(before) or any(changed(c, o) for c, o in zip(new, before, strict=True)):
            return True
    before = {c.get("name"): c for c in old_spec.get("ephemeralContainers") or []}
    return any(c.get("name") not in before or changed(c, before[c.get("name")])
               for c in spec.get("ephemeralContainers") or [])


def _aggregate(causes: list) -> str:
    texts = [c.text() for c in causes]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
