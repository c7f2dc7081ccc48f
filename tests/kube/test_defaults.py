"""`lks.kube.defaulting.apply`: a minimal manifest in, the object a kube-apiserver 1.36 returns
out. Expectations follow upstream's `pkg/apis/*/v1/defaults_test.go` and real round trips."""

import copy

import pytest

from lks.kube import catalog, defaulting

UID = "6a3c8f0e-1b2d-4c5e-8f90-123456789abc"
NOT_READY = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
               "tolerationSeconds": 300}
# what SetDefaults_PodSpec adds to every PodSpec, templates included
POD_SPEC = {"dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "securityContext": {}, "terminationGracePeriodSeconds": 30}
CONTAINER = {"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}


def defaulted(api_version: str, kind: str, obj: dict) -> dict:
    group, _, version = api_version.rpartition("/")
    out = copy.deepcopy({"apiVersion": api_version, "kind": kind, **obj})
    defaulting.apply(group, version, kind, out)
    return out


def container(name="app", image="nginx:1.27", policy="IfNotPresent", **extra):
    return {"name": name, "image": image, "imagePullPolicy": policy, **CONTAINER, **extra}


# kubectl create deployment web --image=nginx --dry-run=client -o json
KUBECTL_DEPLOYMENT = {
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}},
        "strategy": {},
    },
    "status": {},
}


def test_kubectl_create_deployment():
    assert defaulted("apps/v1", "Deployment", KUBECTL_DEPLOYMENT) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx", "resources": {}, "imagePullPolicy": "Always",
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                    }],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "securityContext": {},
                    "schedulerName": "default-scheduler",
                },
            },
        },
        "status": {},
    }


def test_pod():
    pod = {"metadata": {"name": "p", "namespace": "default", "creationTimestamp": "2026-01-02T03:04:05Z"},
           "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}
    assert defaulted("v1", "Pod", pod) == {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": "2026-01-02T03:04:05Z"},
        "spec": {
            "containers": [container()],
            **POD_SPEC,
            "enableServiceLinks": True,
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "tolerations": [NOT_READY, UNREACHABLE],
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }


def test_pod_template_spec_in_full():
    """Containers, probes, env, lifecycle hooks and every defaulted volume source."""
    spec = {
        "containers": [{
            "name": "app", "image": "registry.example.com/team/app:v2",
            "ports": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}],
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "livenessProbe": {"httpGet": {"port": 8080}},
            "readinessProbe": {"grpc": {"port": 9090}, "periodSeconds": 5},
            "startupProbe": {"tcpSocket": {"port": 8080}},
            "lifecycle": {"preStop": {"httpGet": {"port": 8080, "path": "/quit"}}},
        }],
        "initContainers": [{"name": "init", "image": "busybox"}],
        "volumes": [
            {"name": "scratch"},
            {"name": "cm", "configMap": {"name": "settings"}},
            {"name": "secret", "secret": {"secretName": "creds", "defaultMode": 256}},
            {"name": "host", "hostPath": {"path": "/var/log"}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
            {"name": "model", "image": {"reference": "quay.io/models/llm:latest"}},
            {"name": "claim", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
        ],
        "serviceAccount": "builder",
    }
    out = defaulted("v1", "PodTemplate", {"metadata": {"name": "t"}, "template": {"spec": spec}})
    assert out["template"]["spec"] == {
        **POD_SPEC,
        "serviceAccountName": "builder",
        "serviceAccount": "builder",
        "containers": [container(
            image="registry.example.com/team/app:v2",
            ports=[{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}],
            env=[{"name": "NODE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}],
            livenessProbe={"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                           "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
            readinessProbe={"grpc": {"port": 9090, "service": ""}, "periodSeconds": 5, "timeoutSeconds": 1,
                            "successThreshold": 1, "failureThreshold": 3},
            startupProbe={"tcpSocket": {"port": 8080}, "timeoutSeconds": 1, "periodSeconds": 10,
                          "successThreshold": 1, "failureThreshold": 3},
            lifecycle={"preStop": {"httpGet": {"port": 8080, "path": "/quit", "scheme": "HTTP"}}},
        )],
        "initContainers": [container("init", "busybox", "Always")],
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "cm", "configMap": {"name": "settings", "defaultMode": 420}},
            {"name": "secret", "secret": {"secretName": "creds", "defaultMode": 256}},
            {"name": "host", "hostPath": {"path": "/var/log", "type": ""}},
            {"name": "info", "downwardAPI": {"defaultMode": 420, "items": [
                {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}}]}},
            {"name": "token", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
            {"name": "model", "image": {"reference": "quay.io/models/llm:latest", "pullPolicy": "Always"}},
            {"name": "claim", "ephemeral": {"volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}}}},
        ],
    }
    assert "tolerations" not in out["template"]["spec"]  # admission defaults are for Pods only


@pytest.mark.parametrize("image, policy", [
    pytest.param("nginx", "Always", id="no-tag"),
    pytest.param("nginx:latest", "Always", id="latest"),
    pytest.param("nginx:1.27", "IfNotPresent", id="tag"),
    pytest.param("library/nginx:LATEST", "IfNotPresent", id="tags-are-case-sensitive"),
    pytest.param("nginx@sha256:" + "a" * 64, "IfNotPresent", id="digest"),
    pytest.param("nginx:latest@sha256:" + "a" * 64, "Always", id="latest-and-digest"),
    pytest.param("nginx@sha256:abc", "IfNotPresent", id="short-digest-fails"),
    pytest.param("nginx@md5:" + "a" * 32, "IfNotPresent", id="unknown-algorithm-fails"),
    pytest.param("localhost:5000/app", "Always", id="registry-port"),
    pytest.param("mcr.microsoft.com/oss/nginx/nginx:1.21.6", "IfNotPresent", id="registry"),
    pytest.param("Nginx", "IfNotPresent", id="uppercase-fails"),
    pytest.param("MyRegistry.io/app", "Always", id="uppercase-registry"),
    pytest.param("a" * 64, "IfNotPresent", id="bare-identifier-fails"),
    pytest.param("", "IfNotPresent", id="empty-fails"),
    pytest.param(None, "IfNotPresent", id="missing"),
])
def test_image_pull_policy(image, policy):
    spec = {"containers": [{"name": "c"} if image is None else {"name": "c", "image": image}]}
    out = defaulted("v1", "Pod", {"metadata": {"name": "p"}, "spec": spec})
    assert out["spec"]["containers"][0]["imagePullPolicy"] == policy


@pytest.mark.parametrize("containers, pod_resources, qos", [
    pytest.param([{}], None, "BestEffort", id="best-effort"),
    pytest.param([{"requests": {"cpu": "100m"}}], None, "Burstable", id="requests-only"),
    pytest.param([{"limits": {"cpu": "1", "memory": "1Gi"}}], None, "Guaranteed", id="limits-become-requests"),
    pytest.param([{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}}],
                 None, "Guaranteed", id="equal-quantities"),
    pytest.param([{"limits": {"cpu": "1"}}], None, "Burstable", id="no-memory-limit"),
    pytest.param([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], None, "Burstable", id="one-unbounded"),
    pytest.param([{"requests": {"cpu": "0"}}], None, "BestEffort", id="zero-does-not-count"),
    pytest.param([{"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "1"}}], None, "Burstable",
                 id="requests-below-limits"),
    pytest.param([{}], {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}},
                 "Guaranteed", id="pod-level"),
])
def test_qos_class(containers, pod_resources, qos):
    spec = {"containers": [{"name": f"c{i}", "image": "app:1", "resources": r} for i, r in enumerate(containers)]}
    if pod_resources is not None:
        spec["resources"] = pod_resources
    out = defaulted("v1", "Pod", {"metadata": {"name": "p"}, "spec": spec})
    assert out["status"]["qosClass"] == qos


def test_pod_only_defaults():
    spec = {
        "hostNetwork": True,
        "serviceAccountName": "runner",
        "containers": [{"name": "c", "image": "app:1", "ports": [{"containerPort": 9100}],
                        "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}}}],
        "tolerations": [{"operator": "Exists"}],
        "schedulingGates": [{"name": "example.com/quota"}],
    }
    out = defaulted("v1", "Pod", {"metadata": {"name": "p", "creationTimestamp": "2026-01-02T03:04:05Z"},
                                  "spec": spec})
    c = out["spec"]["containers"][0]
    assert c["ports"] == [{"containerPort": 9100, "hostPort": 9100, "protocol": "TCP"}]
    assert c["resources"] == {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi", "cpu": "500m"}}
    assert out["spec"]["serviceAccount"] == "runner"
    assert out["spec"]["tolerations"] == [{"operator": "Exists"}]  # tolerates everything already
    assert out["status"] == {"phase": "Pending", "qosClass": "Burstable", "conditions": [{
        "type": "PodScheduled", "status": "False", "lastProbeTime": None,
        "lastTransitionTime": "2026-01-02T03:04:05Z", "reason": "SchedulingGated",
        "message": "Scheduling is blocked due to non-empty scheduling gates"}]}


def test_pod_match_label_keys_merge_into_selectors():
    term = {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname",
            "matchLabelKeys": ["pod-template-hash", "absent"], "mismatchLabelKeys": ["tenant"]}
    spec = {
        "containers": [{"name": "c", "image": "app:1"}],
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                       "labelSelector": {"matchLabels": {"app": "web"}},
                                       "matchLabelKeys": ["pod-template-hash"]}],
    }
    metadata = {"name": "p", "labels": {"app": "web", "pod-template-hash": "5d4f", "tenant": "a"}}
    out = defaulted("v1", "Pod", {"metadata": metadata, "spec": spec})
    anti = out["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["labelSelector"]["matchExpressions"] == [
        {"key": "pod-template-hash", "operator": "In", "values": ["5d4f"]},
        {"key": "tenant", "operator": "NotIn", "values": ["a"]},
    ]
    spread = out["spec"]["topologySpreadConstraints"][0]
    assert spread["labelSelector"]["matchExpressions"] == [
        {"key": "pod-template-hash", "operator": "In", "values": ["5d4f"]}]


def test_mirror_pods_get_no_service_account():
    metadata = {"name": "p", "annotations": {"kubernetes.io/config.mirror": "abc"}}
    out = defaulted("v1", "Pod", {"metadata": metadata, "spec": {"containers": [{"name": "c", "image": "a:1"}]}})
    assert "serviceAccountName" not in out["spec"] and "serviceAccount" not in out["spec"]


SERVICE_IN = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}


@pytest.mark.parametrize("spec, expected", [
    pytest.param({}, {}, id="cluster-ip"),
    pytest.param({"type": "NodePort", "ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}]},
                 {"type": "NodePort", "externalTrafficPolicy": "Cluster",
                  "ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}]}, id="node-port"),
    pytest.param({"type": "LoadBalancer"}, {"type": "LoadBalancer", "externalTrafficPolicy": "Cluster",
                                            "allocateLoadBalancerNodePorts": True}, id="load-balancer"),
    pytest.param({"externalIPs": ["203.0.113.7"]}, {"externalIPs": ["203.0.113.7"],
                                                    "externalTrafficPolicy": "Cluster"}, id="external-ips"),
    pytest.param({"sessionAffinity": "ClientIP"},
                 {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}},
                 id="client-ip-affinity"),
    pytest.param({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}, {}, id="config-dropped-for-none"),
    pytest.param({"clusterIP": "None", "selector": None},
                 {"clusterIP": "None", "selector": None, "ipFamilyPolicy": "RequireDualStack",
                  "ipFamilies": ["IPv4", "IPv6"]},
                 id="headless-selectorless"),
    pytest.param({"clusterIP": "None"}, {"clusterIP": "None"}, id="headless"),
    pytest.param({"clusterIPs": ["fd00::10"]}, {"clusterIPs": ["fd00::10"], "ipFamilies": ["IPv6"]},
                 id="family-from-ip"),
])
def test_service(spec, expected):
    out = defaulted("v1", "Service", {**SERVICE_IN, "spec": {**SERVICE_IN["spec"], **spec}})
    want = {"selector": {"app": "web"}, "type": "ClusterIP", "sessionAffinity": "None",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"], **expected}
    assert out["spec"] == want


def test_external_name_service():
    out = defaulted("v1", "Service", {"metadata": {"name": "db"},
                                      "spec": {"type": "ExternalName", "externalName": "db.example.com"}})
    assert out["spec"] == {"type": "ExternalName", "externalName": "db.example.com", "sessionAffinity": "None"}


def test_load_balancer_status_ip_mode():
    status = {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}}
    out = defaulted("v1", "Service", {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}, "status": status})
    assert out["status"]["loadBalancer"]["ingress"] == [{"ip": "203.0.113.9", "ipMode": "VIP"},
                                                        {"hostname": "lb.example.com"}]


POD_TEMPLATE_IN = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}
POD_TEMPLATE_OUT = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [container()], **POD_SPEC}}
SELECTOR = {"matchLabels": {"app": "x"}}
CLAIM = {"metadata": {"name": "data"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


@pytest.mark.parametrize("api_version, kind, obj, expected", [
    pytest.param("apps/v1", "ReplicaSet", {"spec": {"selector": SELECTOR, "template": POD_TEMPLATE_IN}},
                 {"spec": {"replicas": 1, "selector": SELECTOR, "template": POD_TEMPLATE_OUT}}, id="replicaset"),
    pytest.param("apps/v1", "StatefulSet", {"spec": {"selector": SELECTOR, "serviceName": "db",
                                                     "template": POD_TEMPLATE_IN, "volumeClaimTemplates": [CLAIM]}},
                 {"spec": {
                     "replicas": 1, "selector": SELECTOR, "serviceName": "db", "template": POD_TEMPLATE_OUT,
                     "podManagementPolicy": "OrderedReady",
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}},
                     "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                     "revisionHistoryLimit": 10,
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                         "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}],
                 }}, id="statefulset"),
    pytest.param("apps/v1", "StatefulSet", {"spec": {"updateStrategy": {"type": "RollingUpdate"},
                                                     "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"},
                                                     "template": POD_TEMPLATE_IN}},
                 {"spec": {"replicas": 1, "template": POD_TEMPLATE_OUT, "podManagementPolicy": "OrderedReady",
                           "updateStrategy": {"type": "RollingUpdate"}, "revisionHistoryLimit": 10,
                           "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"}}},
                 id="statefulset-explicit-rolling-update"),
    pytest.param("apps/v1", "DaemonSet", {"spec": {"selector": SELECTOR, "template": POD_TEMPLATE_IN}},
                 {"spec": {"selector": SELECTOR, "template": POD_TEMPLATE_OUT, "revisionHistoryLimit": 10,
                           "updateStrategy": {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}},
                 id="daemonset"),
    pytest.param("apps/v1", "Deployment", {"spec": {"replicas": 0, "revisionHistoryLimit": 0,
                                                    "strategy": {"type": "Recreate"}, "template": POD_TEMPLATE_IN}},
                 {"spec": {"replicas": 0, "revisionHistoryLimit": 0, "strategy": {"type": "Recreate"},
                           "progressDeadlineSeconds": 600, "template": POD_TEMPLATE_OUT}},
                 id="deployment-keeps-client-values"),
    pytest.param("v1", "ReplicationController", {"spec": {"template": POD_TEMPLATE_IN}},
                 {"metadata": {"labels": {"app": "x"}},
                  "spec": {"replicas": 1, "selector": {"app": "x"}, "template": POD_TEMPLATE_OUT}},
                 id="replicationcontroller"),
    pytest.param("batch/v1", "CronJob", {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {
                     "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}],
                                           "restartPolicy": "OnFailure"}}}}}},
                 {"spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Allow", "suspend": False,
                           "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                           "jobTemplate": {"spec": {"template": {"spec": {
                               **POD_SPEC, "containers": [container()], "restartPolicy": "OnFailure"}}}}}},
                 id="cronjob"),
    pytest.param("autoscaling/v2", "HorizontalPodAutoscaler",
                 {"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                           "maxReplicas": 5}},
                 {"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                           "maxReplicas": 5, "minReplicas": 1, "metrics": [{"type": "Resource", "resource": {
                               "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}},
                 id="hpa-v2"),
    pytest.param("autoscaling/v2", "HorizontalPodAutoscaler",
                 {"spec": {"maxReplicas": 5, "minReplicas": 2, "metrics": [], "behavior": {
                     "scaleDown": {"stabilizationWindowSeconds": 60}}}},
                 {"spec": {"maxReplicas": 5, "minReplicas": 2, "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}], "behavior": {
                     "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                         {"type": "Pods", "value": 4, "periodSeconds": 15},
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                     "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]}}}},
                 id="hpa-v2-behavior"),
    pytest.param("autoscaling/v1", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3}},
                 {"spec": {"maxReplicas": 3, "minReplicas": 1, "targetCPUUtilizationPercentage": 80}}, id="hpa-v1"),
    pytest.param("v1", "Secret", {"data": {"k": "dg=="}}, {"data": {"k": "dg=="}, "type": "Opaque"}, id="secret"),
    pytest.param("v1", "PersistentVolumeClaim", {"spec": {"accessModes": ["ReadWriteOnce"]}},
                 {"spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}},
                 id="pvc"),
    pytest.param("v1", "PersistentVolume", {"spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/d"}}},
                 {"spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/d", "type": ""},
                           "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"},
                  "status": {"phase": "Pending"}}, id="pv"),
    pytest.param("v1", "PersistentVolume", {"spec": {"azureDisk": {"diskName": "d", "diskURI": "u"},
                                                     "persistentVolumeReclaimPolicy": "Delete"}},
                 {"spec": {"azureDisk": {"diskName": "d", "diskURI": "u", "cachingMode": "ReadWrite",
                                         "fsType": "ext4", "readOnly": False, "kind": "Shared"},
                           "persistentVolumeReclaimPolicy": "Delete", "volumeMode": "Filesystem"},
                  "status": {"phase": "Pending"}}, id="pv-azure-disk"),
    pytest.param("v1", "Endpoints", {"subsets": [{"addresses": [{"ip": "10.1.0.4"}], "ports": [{"port": 80}]}]},
                 {"subsets": [{"addresses": [{"ip": "10.1.0.4"}], "ports": [{"port": 80, "protocol": "TCP"}]}]},
                 id="endpoints"),
    pytest.param("v1", "Node", {"status": {"capacity": {"cpu": "4", "pods": "110"}}},
                 {"status": {"capacity": {"cpu": "4", "pods": "110"}, "allocatable": {"cpu": "4", "pods": "110"}}},
                 id="node"),
    pytest.param("v1", "LimitRange", {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"},
                                                           "min": {"memory": "64Mi"}}]}},
                 {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"},
                                       "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "64Mi"}}]}},
                 id="limitrange"),
    pytest.param("discovery.k8s.io/v1", "EndpointSlice", {"addressType": "IPv4", "ports": [{"port": 80}]},
                 {"addressType": "IPv4", "ports": [{"port": 80, "name": "", "protocol": "TCP"}]}, id="endpointslice"),
    pytest.param("networking.k8s.io/v1", "NetworkPolicy",
                 {"spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}},
                 {"spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}]}],
                           "policyTypes": ["Ingress"]}}, id="networkpolicy"),
    pytest.param("networking.k8s.io/v1", "NetworkPolicy", {"spec": {"podSelector": {}, "egress": [{}]}},
                 {"spec": {"podSelector": {}, "egress": [{}], "policyTypes": ["Ingress", "Egress"]}},
                 id="networkpolicy-egress"),
    pytest.param("networking.k8s.io/v1", "IngressClass",
                 {"spec": {"controller": "c", "parameters": {"kind": "K", "name": "n"}}},
                 {"spec": {"controller": "c", "parameters": {"kind": "K", "name": "n", "scope": "Cluster"}}},
                 id="ingressclass"),
    pytest.param("networking.k8s.io/v1", "Ingress", {"spec": {"rules": [{"http": {"paths": [{"path": "/"}]}}]}},
                 {"spec": {"rules": [{"http": {"paths": [{"path": "/"}]}}]}}, id="ingress-none"),
    pytest.param("rbac.authorization.k8s.io/v1", "RoleBinding",
                 {"roleRef": {"kind": "Role", "name": "r"}, "subjects": [
                     {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                     {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]},
                 {"roleRef": {"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"}, "subjects": [
                     {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
                     {"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"},
                     {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]}, id="rolebinding"),
    pytest.param("storage.k8s.io/v1", "StorageClass", {"provisioner": "disk.csi.azure.com"},
                 {"provisioner": "disk.csi.azure.com", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"},
                 id="storageclass"),
    pytest.param("storage.k8s.io/v1", "CSIDriver", {"spec": {}},
                 {"spec": {"attachRequired": True, "podInfoOnMount": False, "storageCapacity": False,
                           "fsGroupPolicy": "ReadWriteOnceWithFSType", "volumeLifecycleModes": ["Persistent"],
                           "requiresRepublish": False, "seLinuxMount": False}}, id="csidriver"),
    pytest.param("scheduling.k8s.io/v1", "PriorityClass", {"value": 1000},
                 {"value": 1000, "preemptionPolicy": "PreemptLowerPriority"}, id="priorityclass"),
    pytest.param("resource.k8s.io/v1", "ResourceClaim",
                 {"spec": {"devices": {"requests": [
                     {"name": "gpu", "exactly": {"deviceClassName": "gpu", "tolerations": [{"key": "k"}]}},
                     {"name": "any", "firstAvailable": [{"name": "big", "deviceClassName": "big",
                                                         "allocationMode": "All"}]}]}}},
                 {"spec": {"devices": {"requests": [
                     {"name": "gpu", "exactly": {"deviceClassName": "gpu", "allocationMode": "ExactCount", "count": 1,
                                                 "tolerations": [{"key": "k", "operator": "Equal"}]}},
                     {"name": "any", "firstAvailable": [{"name": "big", "deviceClassName": "big",
                                                         "allocationMode": "All"}]}]}}}, id="resourceclaim"),
    pytest.param("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", {"spec": {"priorityLevelConfiguration": {"name": "p"}}},
                 {"spec": {"priorityLevelConfiguration": {"name": "p"}, "matchingPrecedence": 1000}}, id="flowschema"),
    pytest.param("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration",
                 {"spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Queue", "queuing": {}}}}},
                 {"spec": {"type": "Limited", "limited": {
                     "nominalConcurrencyShares": 30, "lendablePercent": 0, "limitResponse": {
                         "type": "Queue", "queuing": {"handSize": 8, "queues": 64, "queueLengthLimit": 50}}}}},
                 id="prioritylevelconfiguration"),
    pytest.param("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration",
                 {"spec": {"type": "Exempt", "exempt": {}}},
                 {"spec": {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}},
                 id="prioritylevelconfiguration-exempt"),
    pytest.param("apiregistration.k8s.io/v1", "APIService",
                 {"spec": {"group": "metrics.k8s.io", "version": "v1beta1",
                           "service": {"namespace": "kube-system", "name": "metrics-server"}}},
                 {"spec": {"group": "metrics.k8s.io", "version": "v1beta1",
                           "service": {"namespace": "kube-system", "name": "metrics-server", "port": 443}}},
                 id="apiservice"),
])
def test_kind(api_version, kind, obj, expected):
    obj = {"metadata": {"name": "x"}, **obj}
    expected = dict(expected)
    metadata = {"name": "x", **expected.pop("metadata", {})}
    assert defaulted(api_version, kind, obj) == {"apiVersion": api_version, "kind": kind,
                                                 "metadata": metadata, **expected}


def test_job():
    job = {"metadata": {"name": "pi", "namespace": "default", "uid": UID},
           "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}],
                                          "restartPolicy": "Never"}}}}
    labels = {"batch.kubernetes.io/controller-uid": UID, "batch.kubernetes.io/job-name": "pi",
              "controller-uid": UID, "job-name": "pi"}
    assert defaulted("batch/v1", "Job", job) == {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": UID, "labels": labels},
        "spec": {
            "parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
            "suspend": False, "podReplacementPolicy": "TerminatingOrFailed", "manualSelector": False,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}},
            "template": {"metadata": {"labels": labels}, "spec": {
                **POD_SPEC, "restartPolicy": "Never", "containers": [container("pi", "perl:5.34")]}},
        },
    }


def test_job_defaulted_before_and_after_it_has_a_uid():
    """The registry's two passes (decode, then after prepare_for_create) give what one pass with
    the uid gives: upstream's read back shows the generated labels on the Job too."""
    job = {"metadata": {"name": "pi"}, "spec": {"template": {"metadata": {"labels": {"app": "pi"}},
                                                             "spec": {"containers": [{"name": "c", "image": "a:1"}]}}}}
    two_passes = defaulted("batch/v1", "Job", job)
    assert "labels" not in two_passes["metadata"]
    two_passes["metadata"]["uid"] = UID
    defaulting.apply("batch", "v1", "Job", two_passes)
    one_pass = defaulted("batch/v1", "Job", {**job, "metadata": {"name": "pi", "uid": UID}})
    assert two_passes == one_pass
    assert one_pass["metadata"]["labels"] == one_pass["spec"]["template"]["metadata"]["labels"] == {
        "app": "pi", "batch.kubernetes.io/controller-uid": UID, "batch.kubernetes.io/job-name": "pi",
        "controller-uid": UID, "job-name": "pi"}


@pytest.mark.parametrize("spec, expected", [
    pytest.param({"parallelism": 3}, {"parallelism": 3, "backoffLimit": 6}, id="parallel-keeps-completions-nil"),
    pytest.param({"completions": 5, "completionMode": "Indexed", "backoffLimitPerIndex": 1},
                 {"completions": 5, "parallelism": 1, "backoffLimit": 2147483647}, id="backoff-per-index"),
    pytest.param({"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}},
                 {"podReplacementPolicy": "Failed", "podFailurePolicy": {"rules": [
                     {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}},
                 id="pod-failure-policy"),
])
def test_job_variants(spec, expected):
    template = {"spec": {"containers": [{"name": "c", "image": "a:1"}], "restartPolicy": "Never"}}
    out = defaulted("batch/v1", "Job", {"metadata": {"name": "j"}, "spec": {**spec, "template": template}})
    for key, value in expected.items():
        assert out["spec"][key] == value
    if "completions" not in spec and "parallelism" in spec:
        assert "completions" not in out["spec"]
    assert "selector" not in out["spec"]  # no uid yet: the strategy pass adds it later


def test_manual_selector_job_is_left_alone():
    spec = {"manualSelector": True, "selector": {"matchLabels": {"app": "j"}},
            "template": {"metadata": {"labels": {"app": "j"}}, "spec": {"containers": [{"name": "c", "image": "a:1"}]}}}
    out = defaulted("batch/v1", "Job", {"metadata": {"name": "j", "uid": UID}, "spec": spec})
    assert out["spec"]["selector"] == {"matchLabels": {"app": "j"}}
    assert out["spec"]["template"]["metadata"]["labels"] == {"app": "j"}
    assert out["metadata"]["labels"] == {"app": "j"}


def test_namespace():
    out = defaulted("v1", "Namespace", {"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "x"}}})
    assert out == {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
                   "status": {"phase": "Active"}}


def test_webhook_configurations():
    rule = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
    hook = {"name": "w.example.com", "clientConfig": {"service": {"namespace": "ns", "name": "svc"}},
            "rules": [rule], "sideEffects": "None", "admissionReviewVersions": ["v1"]}
    expected = {**hook, "clientConfig": {"service": {"namespace": "ns", "name": "svc", "port": 443}},
                "rules": [{**rule, "scope": "*"}], "failurePolicy": "Fail", "matchPolicy": "Equivalent",
                "namespaceSelector": {}, "objectSelector": {}, "timeoutSeconds": 10}
    validating = defaulted("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                           {"metadata": {"name": "v"}, "webhooks": [hook]})
    assert validating["webhooks"] == [expected]
    mutating = defaulted("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                         {"metadata": {"name": "m"}, "webhooks": [hook]})
    assert mutating["webhooks"] == [{**expected, "reinvocationPolicy": "Never"}]


def test_admission_policies():
    rule = {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]}
    matched = {"matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {},
               "resourceRules": [{**rule, "scope": "*"}]}
    spec = {"matchConstraints": {"resourceRules": [rule]}, "validations": [{"expression": "true"}]}
    policy = defaulted("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy",
                       {"metadata": {"name": "p"}, "spec": spec})
    assert policy["spec"] == {**spec, "failurePolicy": "Fail", "matchConstraints": matched}
    binding = defaulted("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding",
                        {"metadata": {"name": "b"}, "spec": {"policyName": "p", "validationActions": ["Deny"],
                                                             "matchResources": {}}})
    assert binding["spec"]["matchResources"] == {"matchPolicy": "Equivalent", "namespaceSelector": {},
                                                 "objectSelector": {}}


def test_custom_resource_definition():
    version = {"name": "v1", "served": True, "storage": True,
               "schema": {"openAPIV3Schema": {"type": "object"}}}
    crd = {"metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced", "versions": [version],
                    "names": {"plural": "widgets", "kind": "Widget"}}}
    out = defaulted("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd)
    assert out["spec"]["names"] == {"plural": "widgets", "kind": "Widget", "singular": "widget",
                                    "listKind": "WidgetList"}
    assert out["spec"]["conversion"] == {"strategy": "None"}
    assert out["status"] == {"storedVersions": ["v1"]}


MANIFESTS = [
    ("apps/v1", "Deployment", KUBECTL_DEPLOYMENT),
    ("v1", "Pod", {"metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {
        "containers": [{"name": "c", "image": "a:1", "resources": {"limits": {"cpu": "1"}}}],
        "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {}, "topologyKey": "zone", "matchLabelKeys": ["a"]}]}},
        "schedulingGates": [{"name": "g"}]}}),
    ("batch/v1", "Job", {"metadata": {"name": "j", "uid": UID}, "spec": {"template": {"spec": {}}}}),
    ("v1", "Service", {"metadata": {"name": "s"}, "spec": {"clusterIP": "None", "ports": [{"port": 53}]}}),
]


@pytest.mark.parametrize("api_version, kind, obj", MANIFESTS, ids=[m[1] for m in MANIFESTS])
def test_idempotent(api_version, kind, obj):
    once = defaulted(api_version, kind, obj)
    twice = copy.deepcopy(once)
    group, _, version = api_version.rpartition("/")
    defaulting.apply(group, version, kind, twice)
    assert twice == once


@pytest.mark.parametrize("group, version, kind", [
    ("", "v1", "ConfigMap"), ("example.com", "v1", "Widget"), ("batch", "v1beta1", "CronJob"),
    ("coordination.k8s.io", "v1", "Lease"), ("policy", "v1", "PodDisruptionBudget"),
])
def test_kinds_without_defaults_are_untouched(group, version, kind):
    obj = {"metadata": {"name": "x"}, "spec": {"template": {}}, "data": {}}
    before = copy.deepcopy(obj)
    defaulting.apply(group, version, kind, obj)
    assert obj == before


def test_malformed_objects_do_not_raise():
    for group, version, kind in defaulting.defaulted_kinds():
        for obj in ({}, {"spec": "x", "metadata": [], "status": 1}, {"spec": {"template": {"spec": []},
                                                                              "containers": "x", "ports": 3}}):
            defaulting.apply(group, version, kind, obj)


def test_defaulted_kinds_are_served():
    served = {(rt.group, rt.version, rt.kind) for rt in catalog.load("1.36").all()}
    assert defaulting.defaulted_kinds() <= served
