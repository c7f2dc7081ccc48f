"""Defaults of a PodSpec, wherever one appears, and of the Pod object itself.

Upstream's generated defaulters (`zz_generated.defaults.go`) run `SetDefaults_PodSpec` and the
nested container, probe and volume defaulters on every PodSpec: a Pod's, and the template of
a PodTemplate, ReplicationController, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and
a CronJob's job template. `pod_spec` and `template` are that shared walk. `SetDefaults_Pod`
adds a few Pod-only defaults (kept off templates so that upgrades do not roll workloads),
and a real kube-apiserver also mutates a new Pod in the admission chain and the Pod strategy;
`pod` adds the parts that do not need to read other objects (see its docstring).
"""

from __future__ import annotations

from lks.kube.defaulting import images, qos
from lks.kube.defaulting._json import Obj, child, children, default, default_zero, is_zero, struct

_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_MODE_0644 = 420
_MIRROR_POD = "kubernetes.io/config.mirror"
# the DefaultTolerationSeconds admission plugin's tolerations, 300s each
_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"


def template(tmpl: Obj | None) -> None:
    """A PodTemplateSpec: its spec is a value, so Go defaults it even when the client sent none."""
    pod_spec(struct(tmpl, "spec"))


def pod_spec(spec: Obj) -> None:
    """`SetDefaults_PodSpec` and the generated walk over volumes and containers."""
    default_zero(spec, "dnsPolicy", "ClusterFirst")
    default_zero(spec, "restartPolicy", "Always")
    default(spec, "securityContext", {})
    default(spec, "terminationGracePeriodSeconds", 30)
    default_zero(spec, "schedulerName", "default-scheduler")
    for volume in children(spec, "volumes"):
        _volume(volume)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in children(spec, key):
            _container(container)
    _mirror_service_account(spec)


def pod(obj: Obj) -> None:
    """A Pod as a create through kube-apiserver leaves it, short of what needs other objects.

    Besides defaulting this applies, as upstream's admission chain and Pod strategy do on
    create: the ServiceAccount plugin's `default` account (not its token volume, which needs
    the account), the DefaultTolerationSeconds tolerations, and `PrepareForCreate`'s Pending
    phase, QoS class, SchedulingGated condition and matchLabelKeys selector merges. The
    Priority plugin (`priority`, `preemptionPolicy`) needs PriorityClasses and is not here.
    Everything only fills what is missing, so running it again, or on an update, is harmless.
    """
    spec = struct(obj, "spec")
    metadata = child(obj, "metadata") or {}
    # Convert_v1_Pod_To_core_Pod: a negative grace period (never valid, once accepted) is 1;
    # Pods only, templates keep theirs (and draw a warning upstream)
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and not isinstance(grace, bool) and grace < 0:
        spec["terminationGracePeriodSeconds"] = 1
    # SetDefaults_Pod: requests default to limits on the Pod only, never on templates
    for key in ("containers", "initContainers"):
        for container in children(spec, key):
            _requests_from_limits(container)
    default(spec, "enableServiceLinks", True)
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for container in children(spec, key):
                for port in children(container, "ports"):
                    if is_zero(port.get("hostPort")):
                        port["hostPort"] = port.get("containerPort", 0)
    pod_spec(spec)

    if _MIRROR_POD not in (child(metadata, "annotations") or {}):
        default_zero(spec, "serviceAccountName", "default")
        _mirror_service_account(spec)
    _default_tolerations(spec)

    status = struct(obj, "status")
    default_zero(status, "phase", "Pending")
    if status is not None and is_zero(status.get("qosClass")):
        status["qosClass"] = qos.pod_qos(spec)
    _scheduling_gated(spec, status, metadata.get("creationTimestamp"))
    pod_labels = child(metadata, "labels") or {}
    _merge_affinity_label_keys(spec, pod_labels)
    for constraint in children(spec, "topologySpreadConstraints"):
        _merge_label_keys(child(constraint, "labelSelector"), constraint.get("matchLabelKeys"), "In", pod_labels)


def _container(container: Obj) -> None:
    if is_zero(container.get("imagePullPolicy")):
        container["imagePullPolicy"] = images.pull_policy(container.get("image"))
    default_zero(container, "terminationMessagePath", "/dev/termination-log")
    default_zero(container, "terminationMessagePolicy", "File")
    for port in children(container, "ports"):
        default_zero(port, "protocol", "TCP")
    for env in children(container, "env"):
        value_from = child(env, "valueFrom")
        _field_ref(child(value_from, "fieldRef"))
        default(child(value_from, "fileKeyRef"), "optional", False)  # EnvFiles: beta, on since 1.35
    for key in _PROBES:
        if (probe := child(container, key)) is not None:
            _probe(probe)
    lifecycle = child(container, "lifecycle")
    for hook in ("postStart", "preStop"):
        _http_get(child(child(lifecycle, hook), "httpGet"))


def _probe(probe: Obj) -> None:
    default_zero(probe, "timeoutSeconds", 1)
    default_zero(probe, "periodSeconds", 10)
    default_zero(probe, "successThreshold", 1)
    default_zero(probe, "failureThreshold", 3)
    _http_get(child(probe, "httpGet"))
    default(child(probe, "grpc"), "service", "")


def _http_get(action: Obj | None) -> None:
    if action is not None:
        default_zero(action, "path", "/")
        default_zero(action, "scheme", "HTTP")


def _field_ref(selector: Obj | None) -> None:
    if selector is not None:
        default_zero(selector, "apiVersion", "v1")


def _volume(volume: Obj) -> None:
    if all(volume.get(key) is None for key in _VOLUME_SOURCES):
        volume["emptyDir"] = {}
    if (image := child(volume, "image")) is not None:  # ImageVolume: beta, on since 1.35
        if is_zero(image.get("pullPolicy")):
            image["pullPolicy"] = images.pull_policy(image.get("reference"))
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        default(child(volume, key), "defaultMode", _MODE_0644)
    for item in children(child(volume, "downwardAPI"), "items"):
        _field_ref(child(item, "fieldRef"))
    for source in children(child(volume, "projected"), "sources"):
        for item in children(child(source, "downwardAPI"), "items"):
            _field_ref(child(item, "fieldRef"))
        default(child(source, "serviceAccountToken"), "expirationSeconds", 3600)
    claim_template = child(child(volume, "ephemeral"), "volumeClaimTemplate")
    default(struct(claim_template, "spec"), "volumeMode", "Filesystem")
    volume_source(volume)


def volume_source(source: Obj) -> None:
    """Defaults shared by a Pod's volumes and a PersistentVolume's source (mostly declarative
    `+default` markers on the legacy in-tree plugins)."""
    default(child(source, "hostPath"), "type", "")
    default_zero(child(source, "iscsi"), "iscsiInterface", "default")
    if (rbd := child(source, "rbd")) is not None:
        default_zero(rbd, "pool", "rbd")
        default_zero(rbd, "user", "admin")
        default_zero(rbd, "keyring", "/etc/ceph/keyring")
    if (disk := child(source, "azureDisk")) is not None:
        default(disk, "cachingMode", "ReadWrite")
        default(disk, "fsType", "ext4")
        default(disk, "readOnly", False)
        default(disk, "kind", "Shared")
    if (scale_io := child(source, "scaleIO")) is not None:
        default_zero(scale_io, "storageMode", "ThinProvisioned")
        default_zero(scale_io, "fsType", "xfs")


def _mirror_service_account(spec: Obj) -> None:
    # v1 conversion: the deprecated `serviceAccount` is an alias that the new field wins over
    if is_zero(spec.get("serviceAccountName")) and not is_zero(spec.get("serviceAccount")):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if not is_zero(spec.get("serviceAccountName")):
        spec["serviceAccount"] = spec["serviceAccountName"]


def _requests_from_limits(container: Obj) -> None:
    resources = child(container, "resources")
    limits = child(resources, "limits")
    if resources is None or not limits:
        return
    requests = struct(resources, "requests")
    for name, value in limits.items():
        requests.setdefault(name, value)


def _default_tolerations(spec: Obj) -> None:
    tolerations = spec.get("tolerations")
    if tolerations is not None and not isinstance(tolerations, list):
        return
    tolerations = tolerations or []

    def tolerated(key: str) -> bool:
        # an empty key or effect is a wildcard, so such a toleration already covers the taint
        return any(
            isinstance(t, dict)
            and (is_zero(t.get("key")) or t.get("key") == key)
            and (is_zero(t.get("effect")) or t.get("effect") == "NoExecute")
            for t in tolerations
        )

    added = [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for key in (_NOT_READY, _UNREACHABLE) if not tolerated(key)
    ]
    if added:
        spec["tolerations"] = [*tolerations, *added]


def _scheduling_gated(spec: Obj, status: Obj, created: str | None) -> None:
    if not spec.get("schedulingGates"):
        return
    conditions = status.get("conditions")
    if conditions is not None and not isinstance(conditions, list):
        return
    if any(isinstance(c, dict) and c.get("type") == "PodScheduled" for c in conditions or []):
        return
    # upstream stamps the create time; the registry has just set creationTimestamp to it
    status["conditions"] = [*(conditions or []), {
        "type": "PodScheduled", "status": "False", "lastProbeTime": None, "lastTransitionTime": created,
        "reason": "SchedulingGated", "message": "Scheduling is blocked due to non-empty scheduling gates",
    }]


def _merge_affinity_label_keys(spec: Obj, pod_labels: Obj) -> None:
    # MatchLabelKeysInPodAffinity (GA in 1.33): matchLabelKeys / mismatchLabelKeys become
    # In / NotIn requirements of the term's selector, with the Pod's own label values
    affinity = child(spec, "affinity")
    for kind in ("podAffinity", "podAntiAffinity"):
        rules = child(affinity, kind)
        terms = [*children(rules, "requiredDuringSchedulingIgnoredDuringExecution")]
        terms += [t for w in children(rules, "preferredDuringSchedulingIgnoredDuringExecution")
                  if (t := child(w, "podAffinityTerm")) is not None]
        for term in terms:
            selector = child(term, "labelSelector")
            _merge_label_keys(selector, term.get("matchLabelKeys"), "In", pod_labels)
            _merge_label_keys(selector, term.get("mismatchLabelKeys"), "NotIn", pod_labels)


def _merge_label_keys(selector: Obj | None, keys: object, operator: str, pod_labels: Obj) -> None:
    """Add `key <operator> (pod's value)` for each key the Pod has; a nil selector matches
    nothing and stays nil. An identical requirement is not added twice, so a second run is
    a no-op."""
    if selector is None or not isinstance(keys, list):
        return
    expressions = selector.get("matchExpressions")
    if expressions is not None and not isinstance(expressions, list):
        return
    expressions = list(expressions or [])
    for key in keys:
        if isinstance(key, str) and key in pod_labels:
            requirement = {"key": key, "operator": operator, "values": [pod_labels[key]]}
            if requirement not in expressions:
                expressions.append(requirement)
    if expressions:
        selector["matchExpressions"] = expressions
