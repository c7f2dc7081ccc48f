"""Per-type validation (`lks.kube.typevalidation`) against upstream's field paths and messages.

Expected strings are upstream's, from `pkg/apis/{core,apps,batch,networking,autoscaling,policy,
rbac,coordination}/validation` and the `field` package of Kubernetes 1.34+ (complex values
rendered as JSON). Each case states the errors `kubectl` would print after `is invalid:`.
"""

import copy

import pytest

from lks.kube import defaulting, typevalidation
from lks.kube.errors import Cause
from lks.kube.typevalidation import cron
from lks.kube.typevalidation.field import GoStruct, go_json

RFC1123 = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
           "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
           "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
CONFIG_KEY = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
              "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
POD_UPDATE = ("pod updates may not change fields other than `spec.containers[*].image`,"
              "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
              "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
              "previously negative)")


def texts(causes: list[Cause]) -> list[str]:
    return [c.text() for c in causes]


def errs(group: str, kind: str, obj: dict) -> list[str]:
    return texts(typevalidation.validate(group, kind, obj))


def update_errs(group: str, kind: str, obj: dict, old: dict) -> list[str]:
    return texts(typevalidation.validate_update(group, kind, obj, old))


def defaulted(group: str, version: str, kind: str, obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    defaulting.apply(group, version, kind, obj)
    return obj


CONTAINER = {"name": "c", "image": "nginx:1.25"}
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [CONTAINER]}}


def pod(**spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [dict(CONTAINER)], **spec}}


def with_container(**fields) -> dict:
    return pod(containers=[{**CONTAINER, **fields}])


def deployment(**spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": copy.deepcopy(TEMPLATE), **spec}}


# --- valid objects -------------------------------------------------------------------------------

VALID = [
    ("", "v1", "Pod", pod(volumes=[{"name": "v", "configMap": {"name": "cm"}}],
                          containers=[{**CONTAINER, "ports": [{"containerPort": 80, "name": "http"}],
                                       "env": [{"name": "1_relaxed.name", "value": "x"},
                                               {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                                       "volumeMounts": [{"name": "v", "mountPath": "/etc/cm"}],
                                       "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}},
                                       "readinessProbe": {"httpGet": {"port": "http"}}}])),
    ("", "v1", "Service", {"metadata": {"name": "s"}, "spec": {"selector": {"app": "web"},
                                                                "ports": [{"port": 80, "targetPort": "http"}]}}),
    ("", "v1", "Service", {"metadata": {"name": "s"}, "spec": {"clusterIP": "None", "selector": {"app": "web"}}}),
    ("", "v1", "Service", {"metadata": {"name": "s"}, "spec": {"type": "ExternalName", "externalName": "a.io."}}),
    ("", "v1", "Service", {"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 443}],
                                                                "externalTrafficPolicy": "Local"}}),
    ("", "v1", "Secret", {"metadata": {"name": "s"}, "type": "kubernetes.io/tls",
                          "data": {"tls.crt": "YQ==", "tls.key": "YQ=="}}),
    ("", "v1", "Secret", {"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson",
                          "data": {".dockerconfigjson": "eyJhdXRocyI6e319"}}),
    ("", "v1", "ConfigMap", {"metadata": {"name": "c"}, "data": {"app.properties": "x", "KEY_1": "y"}}),
    ("", "v1", "Namespace", {"metadata": {"name": "n"}}),
    ("", "v1", "Node", {"metadata": {"name": "n"}, "spec": {"podCIDR": "10.244.1.0/24"},
                        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}),
    ("", "v1", "PersistentVolumeClaim", {"metadata": {"name": "c"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    ("apps", "v1", "Deployment", deployment()),
    ("apps", "v1", "StatefulSet", {"metadata": {"name": "s"}, "spec": {
        "serviceName": "s", "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}}),
    ("apps", "v1", "DaemonSet", {"metadata": {"name": "s"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}}),
    ("batch", "v1", "CronJob", {"metadata": {"name": "c"}, "spec": {"schedule": "@hourly", "timeZone": "Europe/Paris",
                                "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                                                               "containers": [CONTAINER]}}}}}}),
    ("networking.k8s.io", "v1", "Ingress", {"metadata": {"name": "i"}, "spec": {"rules": [{
        "host": "*.example.com", "http": {"paths": [{"path": "/api", "pathType": "Prefix", "backend": {
            "service": {"name": "api", "port": {"name": "http"}}}}]}}]}}),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", {"metadata": {"name": "h"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "maxReplicas": 3}}),
    ("policy", "v1", "PodDisruptionBudget", {"metadata": {"name": "p"}, "spec": {
        "maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}}}}),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", {"metadata": {"name": "r"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}, "subjects": [
        {"kind": "ServiceAccount", "name": "default"}, {"kind": "Group", "name": "devs"}]}),
    ("coordination.k8s.io", "v1", "Lease", {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 40}}),
]


@pytest.mark.parametrize("group, version, kind, obj", [pytest.param(*v, id=f"{v[2]}-{i}") for i, v in enumerate(VALID)])
def test_valid_objects(group, version, kind, obj):
    assert errs(group, kind, obj) == []  # absent defaulted fields read as their defaults
    obj = defaulted(group, version, kind, obj)
    assert errs(group, kind, obj) == []
    assert update_errs(group, kind, obj, copy.deepcopy(obj)) == []


def test_job_after_defaulting_generates_its_selector():
    job = {"metadata": {"name": "j", "uid": "0c7a"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [CONTAINER]}}}}
    assert errs("batch", "Job", job) == ["spec.selector: Required value"]
    job = defaulted("batch", "v1", "Job", job)
    job = defaulted("batch", "v1", "Job", job)
    assert errs("batch", "Job", job) == []


def test_unknown_types_have_no_rules():
    assert errs("example.com", "Widget", {"spec": {"anything": True}}) == []
    assert update_errs("", "ServiceAccount", {}, {"secrets": []}) == []


# --- pods ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("obj, expected", [
    pytest.param(pod(containers=[]), ["spec.containers: Required value"], id="no-containers"),
    pytest.param(with_container(image=""), ["spec.containers[0].image: Required value"], id="image"),
    pytest.param(with_container(name="Web"), [f'spec.containers[0].name: Invalid value: "Web": {RFC1123}'],
                 id="container-name"),
    pytest.param(pod(containers=[CONTAINER, CONTAINER]), ['spec.containers[1].name: Duplicate value: "c"'],
                 id="duplicate-container"),
    pytest.param(with_container(ports=[{"containerPort": 0}, {"containerPort": 70000, "protocol": "HTTP"}]), [
        "spec.containers[0].ports[0].containerPort: Required value",
        "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
    ], id="ports"),
    pytest.param(with_container(ports=[{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"},
                                       {"containerPort": 82, "name": "HTTP--x-1234567890"}]), [
        'spec.containers[0].ports[1].name: Duplicate value: "http"',
        'spec.containers[0].ports[2].name: Invalid value: "HTTP--x-1234567890": must be no more than 15 characters',
        'spec.containers[0].ports[2].name: Invalid value: "HTTP--x-1234567890": must contain only alpha-numeric '
        "characters (a-z, 0-9), and hyphens (-)",
        'spec.containers[0].ports[2].name: Invalid value: "HTTP--x-1234567890": must not contain consecutive hyphens',
    ], id="port-names"),
    pytest.param(pod(containers=[{**CONTAINER, "ports": [{"containerPort": 80, "hostPort": 8080}]},
                                 {**CONTAINER, "name": "d", "ports": [{"containerPort": 81, "hostPort": 8080}]}]),
                 ['spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"'], id="host-port-conflict"),
    pytest.param(pod(restartPolicy="Sometimes", dnsPolicy="Google"), [
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", '
        '"Default", "None"',
    ], id="policies"),
    pytest.param(with_container(imagePullPolicy="Sometimes", terminationMessagePolicy="Log"), [
        'spec.containers[0].terminationMessagePolicy: Unsupported value: "Log": supported values: "File", '
        '"FallbackToLogsOnError"',
        'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"IfNotPresent", "Never"',
    ], id="container-policies"),
    pytest.param(with_container(env=[{"name": ""}, {"name": "A=B"}, {"name": "X", "value": "y",
                                                                        "valueFrom": {"fieldRef": {"fieldPath": "x"}}},
                                     {"name": "Y", "valueFrom": {}}]), [
        "spec.containers[0].env[0].name: Required value",
        "spec.containers[0].env[1].name: Invalid value: \"A=B\": a valid environment variable name must consist "
        "only of printable ASCII characters other than '='",
        'spec.containers[0].env[2].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
        'spec.containers[0].env[3].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
        "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
    ], id="env"),
    pytest.param(with_container(resources={"requests": {"cpu": "2", "memory": "-1", "foo": "1"},
                                           "limits": {"cpu": "1", "example.com/gpu": "500m"}}), [
        'spec.containers[0].resources.limits[example.com/gpu]: Invalid value: "500m": must be an integer',
        'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
        'spec.containers[0].resources.requests[memory]: Invalid value: "-1": must be greater than or equal to 0',
        'spec.containers[0].resources.requests[foo]: Invalid value: "foo": must be a standard resource type or '
        "fully qualified",
        'spec.containers[0].resources.requests[foo]: Invalid value: "foo": must be a standard resource for '
        "containers",
    ], id="resources"),
    pytest.param(pod(volumes=[{"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}}, {"name": "w"},
                              {"name": "x", "secret": {}}, {"name": "v", "emptyDir": {}}],
                     containers=[{**CONTAINER, "volumeMounts": [{"name": "v", "mountPath": "/a"},
                                                                {"name": "x", "mountPath": "/a"}]}]), [
        "spec.volumes[0].secret: Forbidden: may not specify more than 1 volume type",
        "spec.volumes[1]: Required value: must specify a volume type",
        "spec.volumes[2].secret.secretName: Required value",
        # the first "v" was invalid, so this one is no duplicate and the mount finds it
        'spec.containers[0].volumeMounts[1].name: Not found: "x"',
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/a": must be unique',
    ], id="volumes"),
    pytest.param(pod(volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "hostPath": {"path": "/x"}}]),
                 ['spec.volumes[1].name: Duplicate value: "v"'], id="duplicate-volume"),
    pytest.param(with_container(livenessProbe={"exec": {"command": []}, "httpGet": {"port": 80},
                                               "successThreshold": 2, "periodSeconds": -1}), [
        "spec.containers[0].livenessProbe.exec.command: Required value",
        "spec.containers[0].livenessProbe.httpGet: Forbidden: may not specify more than 1 handler type",
        "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
    ], id="probe"),
    pytest.param(pod(initContainers=[{**CONTAINER, "readinessProbe": {"exec": {"command": ["x"]}}},
                                     {**CONTAINER, "name": "i", "restartPolicy": "OnFailure"}]), [
        'spec.initContainers[0].name: Duplicate value: "c"',
        "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without "
        "restartPolicy=Always",
        'spec.initContainers[1].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"',
    ], id="init-containers"),
    pytest.param(pod(tolerations=[{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v"},
                                  {"key": "k", "tolerationSeconds": 5, "effect": "NoSchedule"}]), [
        'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which '
        'means "match all values and all keys"',
        "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
        "spec.tolerations[2].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
        "`tolerationSeconds` is set",
    ], id="tolerations"),
    pytest.param(pod(activeDeadlineSeconds=0, hostname="Host", nodeSelector={"a": "b c"}), [
        'spec.nodeSelector: Invalid value: "b c": a valid label must be an empty string or consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
        f'spec.hostname: Invalid value: "Host": {RFC1123}',
    ], id="scheduling-fields"),
    pytest.param(pod(dnsPolicy="None"), ["spec.dnsConfig: Required value: must provide `dnsConfig` when "
                                         "`dnsPolicy` is None"], id="dns-none"),
    pytest.param(pod(ephemeralContainers=[{"name": "e", "image": "busybox"}]),
                 ["spec.ephemeralContainers: Forbidden: cannot be set on create"], id="ephemeral"),
    pytest.param(with_container(image=" nginx"),
                 ['spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace'],
                 id="image-whitespace"),
])
def test_pod(obj, expected):
    assert errs("", "Pod", obj) == expected


@pytest.fixture
def stored_pod():
    return defaulted("", "v1", "Pod", pod(tolerations=[{"key": "a", "operator": "Exists"}]))


def test_pod_update_allows_images_deadline_and_added_tolerations(stored_pod):
    new = copy.deepcopy(stored_pod)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    new["spec"]["activeDeadlineSeconds"] = 60
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists", "effect": "NoExecute",
                                       "tolerationSeconds": 10})
    assert update_errs("", "Pod", new, stored_pod) == []


def test_pod_update_forbids_other_spec_changes(stored_pod):
    new = copy.deepcopy(stored_pod)
    new["spec"]["restartPolicy"] = "Never"
    [err] = update_errs("", "Pod", new, stored_pod)
    assert err.startswith(f"spec: Forbidden: {POD_UPDATE}\n  core.PodSpec{{\n")
    assert '- \tRestartPolicy: "Always",\n+ \tRestartPolicy: "Never",\n  }\n' in err


@pytest.mark.parametrize("change, expected", [
    pytest.param(lambda s: s["containers"].append({"name": "d", "image": "x"}),
                 ["spec.containers: Forbidden: pod updates may not add or remove containers"], id="add-container"),
    pytest.param(lambda s: s.update(tolerations=[]),
                 ["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"],
                 id="remove-toleration"),
    # upstream reports it twice, from the spec and from the container update check; the aggregated
    # message shows it once
    pytest.param(lambda s: s["containers"][0].update(image=""), ["spec.containers[0].image: Required value"] * 2,
                 id="image-required"),
])
def test_pod_update_errors(stored_pod, change, expected):
    new = copy.deepcopy(stored_pod)
    change(new["spec"])
    assert update_errs("", "Pod", new, stored_pod) == expected


def test_pod_active_deadline_may_only_shrink(stored_pod):
    old = copy.deepcopy(stored_pod)
    old["spec"]["activeDeadlineSeconds"] = 30
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 60
    assert update_errs("", "Pod", new, old) == [
        "spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"]
    del new["spec"]["activeDeadlineSeconds"]
    assert update_errs("", "Pod", new, old) == [
        "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"]


# --- workloads -----------------------------------------------------------------------------------

@pytest.mark.parametrize("obj, expected", [
    pytest.param(deployment(selector=None), [
        "spec.selector: Required value",
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`',
    ], id="no-selector"),
    pytest.param(deployment(selector={"matchLabels": {"app": "x"}}, replicas=-1), [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`',
    ], id="mismatch"),
    pytest.param(deployment(selector={}), ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"],
                 id="empty-selector"),
    pytest.param(deployment(selector={"matchExpressions": [{"key": "app", "operator": "Near"}]}), [
        'spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator',
        'spec.selector: Invalid value: {"matchExpressions":[{"key":"app","operator":"Near"}]}: invalid label '
        "selector",
    ], id="bad-selector"),
    pytest.param(deployment(template={**TEMPLATE, "spec": {"containers": [CONTAINER], "restartPolicy": "Never",
                                                           "activeDeadlineSeconds": 5}}), [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
    ], id="template-restart-policy"),
    pytest.param(deployment(template={"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}),
                 ["spec.template.spec.containers: Required value"], id="template-pod-spec"),
    pytest.param(deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
                 ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0'],
                 id="both-zero"),
    pytest.param(deployment(strategy={"rollingUpdate": {"maxSurge": "x", "maxUnavailable": "120%"}}), [
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"x\": a valid percent string must be a numeric "
        "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "120%": must not be greater than 100%',
    ], id="bad-percent"),
    pytest.param(deployment(strategy={"type": "Recreate", "rollingUpdate": {}}),
                 ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"],
                 id="recreate"),
    pytest.param(deployment(strategy={"type": "BlueGreen"}), [
        'spec.strategy: Unsupported value: {"Type":"BlueGreen","RollingUpdate":null}: supported values: '
        '"Recreate", "RollingUpdate"'], id="strategy-type"),
    pytest.param(deployment(minReadySeconds=10, progressDeadlineSeconds=10),
                 ["spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds"],
                 id="progress-deadline"),
])
def test_deployment(obj, expected):
    assert errs("apps", "Deployment", obj) == expected


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_selector_is_immutable(kind):
    old = deployment()
    new = deployment(selector={"matchLabels": {"app": "web", "tier": "fe"}})
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "fe"
    assert update_errs("apps", kind, new, old) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"fe"}}: field is immutable']


def test_replica_set_says_deployment_as_upstream():
    assert errs("apps", "ReplicaSet", deployment(selector={})) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for deployment"]


def statefulset(**spec) -> dict:
    return {"metadata": {"name": "s"}, "spec": {"serviceName": "s", "selector": {"matchLabels": {"app": "web"}},
                                                "template": copy.deepcopy(TEMPLATE), **spec}}


@pytest.mark.parametrize("obj, expected", [
    pytest.param(statefulset(podManagementPolicy="Random", replicas=-1), [
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    ], id="policy"),
    pytest.param(statefulset(updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}}), [
        'spec.updateStrategy.rollingUpdate: Invalid value: {"Partition":1,"MaxUnavailable":null}: only allowed for '
        "updateStrategy 'RollingUpdate'"], id="on-delete"),
    pytest.param(statefulset(updateStrategy={"rollingUpdate": {"partition": -1, "maxUnavailable": 0}}), [
        "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0",
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: cannot be 0",
    ], id="rolling-update"),
    pytest.param(statefulset(selector={}), ["spec.selector: Invalid value: {}: empty selector is invalid for "
                                            "statefulset"], id="empty-selector"),
    pytest.param(statefulset(template={"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}), [],
                 id="template-spec-not-validated"),
    pytest.param(statefulset(template={**TEMPLATE, "spec": {"containers": [CONTAINER], "restartPolicy": "Never"}}),
                 ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'],
                 id="restart-policy"),
])
def test_stateful_set(obj, expected):
    assert errs("apps", "StatefulSet", obj) == expected


def test_stateful_set_update():
    old = defaulted("apps", "v1", "StatefulSet", statefulset())
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert update_errs("apps", "StatefulSet", new, old) == []
    new["spec"]["serviceName"] = "other"
    assert update_errs("apps", "StatefulSet", new, old) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]


@pytest.mark.parametrize("strategy, expected", [
    pytest.param({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
                 ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"],
                 id="both-zero"),
    pytest.param({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
                 ["spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable "
                  "is non-zero"], id="both-set"),
    pytest.param({"type": "Sometimes"}, ['spec.updateStrategy: Unsupported value: {"Type":"Sometimes",'
                                         '"RollingUpdate":null}: supported values: "RollingUpdate", "OnDelete"'],
                 id="type"),
])
def test_daemon_set(strategy, expected):
    obj = {"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE, "updateStrategy": strategy}}
    assert errs("apps", "DaemonSet", obj) == expected


# --- batch ---------------------------------------------------------------------------------------

def job(**spec) -> dict:
    tmpl = {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u1", "batch.kubernetes.io/job-name": "j",
                                    "controller-uid": "u1", "job-name": "j"}},
            "spec": {"restartPolicy": "Never", "containers": [dict(CONTAINER)]}}
    return {"metadata": {"name": "j", "uid": "u1"}, "spec": {
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}, "template": tmpl, **spec}}


@pytest.mark.parametrize("obj, expected", [
    pytest.param(job(), [], id="valid"),
    pytest.param(job(parallelism=-1, completions=-2, backoffLimit=-3), [
        "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
        "spec.completions: Invalid value: -2: must be greater than or equal to 0",
        "spec.backoffLimit: Invalid value: -3: must be greater than or equal to 0",
    ], id="counts"),
    pytest.param(job(selector={"matchLabels": {"batch.kubernetes.io/controller-uid": "other"}}), [
        'spec.selector: Invalid value: {"matchLabels":{"batch.kubernetes.io/controller-uid":"other"}}: '
        "`selector` not auto-generated",
        'spec.template.metadata.labels: Invalid value: {"batch.kubernetes.io/controller-uid":"u1",'
        '"batch.kubernetes.io/job-name":"j","controller-uid":"u1","job-name":"j"}: `selector` does not match '
        "template `labels`",
    ], id="selector"),
])
def test_job(obj, expected):
    assert errs("batch", "Job", obj) == expected


@pytest.mark.parametrize("restart, expected", [
    ("Always", ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']),
    ("", ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']),
    ("Sometimes", ['spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
                   '"Always", "OnFailure", "Never"',  # from the pod spec
                   'spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
                   '"OnFailure", "Never"']),
    ("OnFailure", []),
])
def test_job_restart_policy(restart, expected):
    obj = job()
    obj["spec"]["template"]["spec"]["restartPolicy"] = restart
    assert errs("batch", "Job", obj) == expected


def test_job_update_immutable_fields():
    old = job(completions=1)
    new = job(completions=2)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox"
    messages = update_errs("batch", "Job", new, old)
    assert messages[0] == "spec.completions: Invalid value: 2: field is immutable"
    assert messages[1].startswith('spec.template: Invalid value: {"metadata":') and \
        messages[1].endswith(": field is immutable")


def cronjob(schedule="*/5 * * * *", name="c", **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {
        "spec": {"restartPolicy": "OnFailure", "containers": [CONTAINER]}}}}, **spec}}


@pytest.mark.parametrize("schedule, message", [
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("* * *", "expected exactly 5 fields, found 3: [* * *]"),
    ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every 1x", 'failed to parse duration @every 1x: time: unknown unit "x" in duration "1x"'),
])
def test_cron_job_schedule(schedule, message):
    assert errs("batch", "CronJob", cronjob(schedule)) == [f'spec.schedule: Invalid value: "{schedule}": {message}']


@pytest.mark.parametrize("schedule", ["0 3 * * *", "*/15 9-17 * JAN-jun MON-FRI", "0 0 1,15 * ?", "@weekly",
                                      "@every 1h30m"])
def test_cron_job_valid_schedules(schedule):
    assert errs("batch", "CronJob", cronjob(schedule)) == []


def test_cron_job_other_rules():
    obj = cronjob("CRON_TZ=UTC 0 * * * *", name="c" * 53, timeZone="Mars/Olympus", concurrencyPolicy="Never")
    obj["spec"]["jobTemplate"]["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    assert errs("batch", "CronJob", obj) == [
        'spec.schedule: Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone '
        "field instead",
        'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
        'spec.concurrencyPolicy: Unsupported value: "Never": supported values: "Allow", "Forbid", "Replace"',
        'spec.jobTemplate.spec.selector: Invalid value: {"matchLabels":{"a":"b"}}: `selector` will be auto-generated',
        f'metadata.name: Invalid value: "{"c" * 53}": must be no more than 52 characters',
    ]
    # the name limit is for creation only; a TZ already in the schedule may stay
    old = cronjob("TZ=UTC 0 * * * *", name="c" * 53)
    assert update_errs("batch", "CronJob", copy.deepcopy(old), old) == []


def test_cron_parse_sets():
    assert cron.parse("*/20 1,2 * * sun").fields == (
        frozenset({0, 20, 40}), frozenset({1, 2}), frozenset(range(1, 32)), frozenset(range(1, 13)), frozenset({0}))
    assert cron.parse("@every 90s").every == 90.0


# --- services ------------------------------------------------------------------------------------

def service(**spec) -> dict:
    return {"metadata": {"name": "s"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


@pytest.mark.parametrize("obj, expected", [
    pytest.param(service(ports=[]), ["spec.ports: Required value"], id="no-ports"),
    pytest.param(service(ports=[{"port": 80}, {"port": 0, "name": "b", "protocol": "ICMP"}]), [
        "spec.ports[0].name: Required value",
        "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        # targetPort defaults to port
        "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
    ], id="ports"),
    pytest.param(service(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "a"}]), [
        'spec.ports[1].name: Duplicate value: "a"',
        'spec.ports[1]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,"TargetPort":0,'
        '"NodePort":0}',
    ], id="duplicates"),
    pytest.param(service(type="Balanced"), ['spec.type: Unsupported value: "Balanced": supported values: "ClusterIP", '
                                            '"ExternalName", "LoadBalancer", "NodePort"'], id="type"),
    pytest.param(service(ports=[{"port": 80, "nodePort": 30080}]),
                 ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"], id="cluster-ip-node-port"),
    pytest.param(service(type="NodePort", ports=[{"port": 80, "nodePort": 80}]), [
        "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid "
        "ports is 30000-32767"], id="node-port-range"),
    pytest.param(service(type="NodePort", clusterIP="None"),
                 ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"],
                 id="headless-node-port"),
    pytest.param(service(clusterIP="10.0.0.01"), ['spec.clusterIPs[0]: Invalid value: "10.0.0.01": must not have '
                                                  "leading 0s"], id="cluster-ip"),
    pytest.param(service(externalTrafficPolicy="Local"), [
        'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services'],
        id="traffic-policy"),
    pytest.param({"spec": {"type": "ExternalName"}}, ["spec.externalName: Required value"], id="external-name"),
    pytest.param(service(selector={"app": "a b"}), [
        'spec.selector: Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric '
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"],
        id="selector"),
])
def test_service(obj, expected):
    assert errs("", "Service", obj) == expected


def test_service_cluster_ip_is_immutable():
    old = service(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"])
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    assert update_errs("", "Service", new, old) == [
        'spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set']
    del new["spec"]["clusterIP"], new["spec"]["clusterIPs"]  # left out: kept as allocated
    assert update_errs("", "Service", new, old) == []


# --- configuration -------------------------------------------------------------------------------

def test_config_map():
    assert errs("", "ConfigMap", {"data": {"a b": "x", "y": "1"}, "binaryData": {"y": "YQ=="}}) == [
        f'data[a b]: Invalid value: "a b": {CONFIG_KEY}',
        'data[y]: Invalid value: "y": duplicate of key present in binaryData',
    ]
    # the field is "" (the whole object); upstream's aggregated message shows it as ": Too long: ..."
    assert typevalidation.validate("", "ConfigMap", {"data": {"big": "x" * (1024 * 1024 + 1)}}) == [
        Cause(reason="FieldValueTooLong", message="Too long: may not be more than 1048576 bytes", field="")]


def test_immutable_config_map_and_secret():
    old = {"immutable": True, "data": {"a": "YQ=="}}
    new = {"data": {"a": "Yg=="}}
    expected = ["immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set"]
    assert update_errs("", "ConfigMap", new, old) == expected
    assert update_errs("", "Secret", new, old) == expected


@pytest.mark.parametrize("obj, expected", [
    pytest.param({"data": {"..": "YQ=="}}, ['data[..]: Invalid value: "..": must not be \'..\''], id="key"),
    pytest.param({"data": {"a": "A" * 1398104}}, ["data: Too long: may not be more than 1048576 bytes"],
                 id="size"),
    pytest.param({"type": "kubernetes.io/service-account-token"},
                 ["metadata.annotations[kubernetes.io/service-account.name]: Required value"], id="sa-token"),
    pytest.param({"type": "kubernetes.io/dockerconfigjson"}, ["data[.dockerconfigjson]: Required value"],
                 id="dockerconfigjson"),
    pytest.param({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "eyJhdXRocyI6"}},
                 ['data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": unexpected end of JSON input'],
                 id="dockerconfigjson-json"),
    pytest.param({"type": "kubernetes.io/dockercfg", "data": {".dockercfg": "W10="}},
                 ['data[.dockercfg]: Invalid value: "<secret contents redacted>": json: cannot unmarshal array into '
                  "Go value of type map[string]interface {}"], id="dockercfg"),
    pytest.param({"type": "kubernetes.io/basic-auth"},
                 ["data[username]: Required value", "data[password]: Required value"], id="basic-auth"),
    pytest.param({"type": "kubernetes.io/basic-auth", "data": {"password": ""}}, [], id="basic-auth-one"),
    pytest.param({"type": "kubernetes.io/ssh-auth", "data": {"ssh-privatekey": ""}},
                 ["data[ssh-privatekey]: Required value"], id="ssh-auth"),
    pytest.param({"type": "kubernetes.io/tls", "data": {"tls.crt": "YQ=="}}, ["data[tls.key]: Required value"],
                 id="tls"),
])
def test_secret(obj, expected):
    assert errs("", "Secret", obj) == expected


def test_secret_type_is_immutable():
    assert update_errs("", "Secret", {"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}},
                       {"data": {}}) == ['type: Invalid value: "kubernetes.io/tls": field is immutable']


# --- cluster and storage -------------------------------------------------------------------------

def test_namespace_finalizers():
    assert errs("", "Namespace", {"spec": {"finalizers": ["kubernetes", "example.com/x", "custom", "-x"]}}) == [
        'spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified',
        "spec.finalizers: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', "
        "and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
        "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        'spec.finalizers: Invalid value: "-x": name is neither a standard finalizer name nor is it fully qualified',
    ]


def test_node():
    assert errs("", "Node", {"spec": {"podCIDR": "10.244.1.1/24"}}) == [
        'spec.podCIDRs[0]: Invalid value: "10.244.1.1/24": must not have bits set beyond the prefix length']
    assert errs("", "Node", {"spec": {"podCIDRs": ["10.0.0.0/8", "10.1.0.0/16"]}}) == [
        'spec.podCIDRs: Invalid value: ["10.0.0.0/8","10.1.0.0/16"]: may specify no more than one CIDR for each IP '
        "family"]
    assert errs("", "Node", {"spec": {"taints": [{"key": "a"}]}}) == ["metadata.taints[0].effect: Required value"]
    old = {"spec": {"podCIDR": "10.0.0.0/24"}}
    assert update_errs("", "Node", {"spec": {"podCIDR": "10.0.1.0/24"}}, old) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid']
    assert update_errs("", "Node", {"spec": {"podCIDR": "10.0.0.0/24"}}, {"spec": {}}) == []


def pvc(storage="1Gi", phase=None, **spec) -> dict:
    obj = {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}, **spec}}
    if phase:
        obj["status"] = {"phase": phase, "capacity": {"storage": storage}}
    return obj


def test_pvc():
    assert errs("", "PersistentVolumeClaim", {"spec": {}}) == [
        "spec.accessModes: Required value: at least 1 access mode is required", "spec.resources[storage]: Required value"]
    assert errs("", "PersistentVolumeClaim", pvc("0", accessModes=["ReadWriteOncePod", "ReadOnlyMany"])) == [
        "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
        'spec.resources[storage]: Invalid value: "0": must be greater than zero']


def test_pvc_update():
    old = pvc(phase="Bound")
    grown = pvc("2Gi", phase="Bound")
    assert update_errs("", "PersistentVolumeClaim", grown, old) == []
    shrunk = pvc("512Mi", phase="Bound")
    assert update_errs("", "PersistentVolumeClaim", shrunk, old) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"]
    changed = pvc(phase="Bound", accessModes=["ReadWriteMany"])
    [err] = update_errs("", "PersistentVolumeClaim", changed, old)
    assert err.startswith("spec: Forbidden: spec is immutable after creation except resources.requests and "
                          "volumeAttributesClassName for bound claims\n  core.PersistentVolumeClaimSpec{")
    assert '- \tAccessModes: ["ReadWriteOnce"],\n+ \tAccessModes: ["ReadWriteMany"],' in err
    unbound = pvc("2Gi")
    assert update_errs("", "PersistentVolumeClaim", unbound, pvc())[0].startswith("spec: Forbidden: spec is immutable")


def test_event_namespace():
    event = {"metadata": {"name": "e", "namespace": "a"}, "involvedObject": {"kind": "Pod", "namespace": "b"}}
    assert errs("", "Event", event) == ['involvedObject.namespace: Invalid value: "b": does not match event.namespace']
    event["involvedObject"]["namespace"] = "a"
    assert errs("", "Event", event) == []


def test_lease():
    assert errs("coordination.k8s.io", "Lease", {"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]


# --- networking, autoscaling, policy, rbac -------------------------------------------------------

def test_ingress():
    paths = [{"path": "/a", "backend": {"service": {"name": "s", "port": {"number": 80}}}},
             {"path": "b", "pathType": "Exact", "backend": {"service": {"name": "s", "port": {"number": 80}}}},
             {"path": "/c", "pathType": "Regex", "backend": {}},
             {"path": "/d", "pathType": "Prefix", "backend": {"service": {"name": "s"}}},
             {"path": "/e//f", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {
                 "name": "http", "number": 80}}, "resource": {"kind": "Bucket", "name": "b"}}}]
    obj = {"spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": paths}}]}}
    assert errs("networking.k8s.io", "Ingress", obj) == [
        'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address',
        "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
        'spec.rules[0].http.paths[1].path: Invalid value: "b": must be an absolute path',
        'spec.rules[0].http.paths[2].pathType: Unsupported value: "Regex": supported values: "Exact", '
        '"ImplementationSpecific", "Prefix"',
        'spec.rules[0].http.paths[2].backend: Invalid value: "": resource or service backend is required',
        "spec.rules[0].http.paths[3].backend: Required value: port name or number is required",
        "spec.rules[0].http.paths[4].path: Invalid value: \"/e//f\": must not contain '//'",
        'spec.rules[0].http.paths[4].backend: Invalid value: "": cannot set both resource and service backends',
    ]
    assert errs("networking.k8s.io", "Ingress", {"spec": {}}) == [
        "spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"]


def test_hpa():
    assert errs("autoscaling", "HorizontalPodAutoscaler", {"spec": {"minReplicas": 0, "maxReplicas": 0}}) == [
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
        "spec.maxReplicas: Invalid value: 0: must be greater than 0",
        "spec.scaleTargetRef.kind: Required value", "spec.scaleTargetRef.name: Required value"]
    obj = {"spec": {"minReplicas": 7, "maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "d"},
                    "metrics": [{"type": "Resource"}]}}
    assert errs("autoscaling", "HorizontalPodAutoscaler", obj) == [
        "spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`",
        "spec.metrics[0].resource: Required value: must populate information for the given metric source"]


def test_pdb():
    obj = {"spec": {"minAvailable": 1, "maxUnavailable": "150%", "selector": {"matchLabels": {"app": "web"}}}}
    assert errs("policy", "PodDisruptionBudget", obj) == [
        'spec: Invalid value: {"MinAvailable":1,"Selector":{"matchLabels":{"app":"web"}},"MaxUnavailable":"150%",'
        '"UnhealthyPodEvictionPolicy":null}: minAvailable and maxUnavailable cannot be both set',
        'spec.maxUnavailable: Invalid value: "150%": must not be greater than 100%']


def test_role_bindings():
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "edit"}
    obj = {"roleRef": ref, "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "r"}]}
    assert errs("rbac.authorization.k8s.io", "ClusterRoleBinding", obj) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value",
        'subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"']
    assert errs("rbac.authorization.k8s.io", "RoleBinding", {}) == [
        'roleRef.apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io"',
        'roleRef.kind: Unsupported value: "": supported values: "Role", "ClusterRole"',
        "roleRef.name: Required value"]
    new = {"roleRef": {**ref, "name": "admin"}}
    assert update_errs("rbac.authorization.k8s.io", "RoleBinding", new, {"roleRef": ref}) == [
        'roleRef: Invalid value: {"APIGroup":"rbac.authorization.k8s.io","Kind":"Role","Name":"admin"}: cannot '
        "change roleRef"]


def test_role_rules():
    obj = {"rules": [{}, {"verbs": ["get"], "nonResourceURLs": ["/healthz"], "resources": ["pods"]}]}
    assert errs("rbac.authorization.k8s.io", "Role", obj) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[0].resources: Required value: resource rules must supply at least one resource",
        'rules[1].nonResourceURLs: Invalid value: ["/healthz"]: namespaced rules cannot apply to non-resource URLs',
        'rules[1].nonResourceURLs: Invalid value: ["/healthz"]: rules cannot apply to both regular resources and '
        "non-resource URLs"]


# --- value rendering -----------------------------------------------------------------------------

def test_go_json_rendering():
    assert go_json({"b": 1, "a": [True, None, "<&>"]}) == '{"a":[true,null,"\\u003c\\u0026\\u003e"],"b":1}'
    assert go_json(GoStruct(Z=1, A="x")) == '{"Z":1,"A":"x"}'
    assert go_json(1.5) == "1.5" and go_json(2.0) == "2"
