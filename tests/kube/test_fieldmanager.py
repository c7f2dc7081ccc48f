import copy
import json

import pytest
from multidict import MultiDict

from lks.kube import catalog, errors, fieldmanager, fieldpath, queryparams
from lks.kube.schema import Schema

DEFS = catalog.load("1.36").schemas
DEPLOYMENT = Schema.of(DEFS, "io.k8s.api.apps.v1.Deployment")
POD = Schema.of(DEFS, "io.k8s.api.core.v1.Pod")
CONFIGMAP = Schema.of(DEFS, "io.k8s.api.core.v1.ConfigMap")
T0, T1, T2, T3 = "2024-05-01T10:00:00Z", "2024-05-01T10:00:01Z", "2024-05-01T10:00:02Z", "2024-05-01T10:00:03Z"
MAIN_RESET = [("status",)]  # the deployment strategy's reset fields on the main resource
STATUS_RESET = [("spec",), ("metadata", "labels")]  # ... and on /status


def compact(v) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def entries(obj) -> dict:
    return {(e["manager"], e["operation"], e.get("subresource", "")): e for e in obj["metadata"]["managedFields"]}


def paths(obj, manager, operation="Update", subresource="") -> set:
    return fieldpath.decode(entries(obj)[(manager, operation, subresource)]["fieldsV1"])


def deployment_config(replicas=3, ports=True):
    container = {"name": "nginx", "image": "nginx:latest"}
    if ports:
        container["ports"] = [{"containerPort": 80, "protocol": "TCP"}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "deployment", "labels": {"app": "nginx"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "nginx"}},
                     "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [container]}}}}


def persisted(obj, uid="uid-1"):
    """What the registry would store: the object got a uid on create."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["uid"] = uid
    return obj


# --- FieldsV1 ------------------------------------------------------------------------------------

# structured-merge-diff fieldpath/serialize_test.go TestSerializeV1GoldenData
GOLDEN = [
    r'''{"f:aaa":{},"f:aab":{},"f:aac":{},"f:aad":{},"f:aae":{},"f:aaf":{},"k:{\"name\":\"first\"}":{},"k:{\"name\":\"second\"}":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{},"v:2":{},"v:3":{},"v:\"aa\"":{},"v:\"ab\"":{},"v:true":{},"i:1":{},"i:2":{},"i:3":{},"i:4":{}}''',
    r'''{"f:aaa":{"k:{\"name\":\"second\"}":{"v:3":{"f:aab":{}}},"v:3":{},"v:true":{}},"f:aab":{"f:aaa":{},"f:aaf":{"k:{\"port\":443,\"protocol\":\"udp\"}":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"k:{\"name\":\"first\"}":{}},"f:aac":{"f:aaa":{"v:1":{}},"f:aac":{},"v:3":{"k:{\"name\":\"second\"}":{}}},"f:aad":{"f:aac":{"v:1":{}},"f:aaf":{"k:{\"name\":\"first\"}":{"k:{\"name\":\"first\"}":{}}},"i:1":{"i:1":{},"i:3":{"v:true":{}}}},"f:aae":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:4":{"f:aaf":{}}},"f:aaf":{"i:1":{"f:aac":{}},"i:2":{},"i:3":{}},"k:{\"name\":\"first\"}":{"f:aad":{"f:aaf":{}}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"f:aaa":{"f:aad":{}}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"f:aac":{},"k:{\"name\":\"first\"}":{"i:3":{}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"i:4":{}}},"v:1":{"f:aac":{"i:4":{}},"f:aaf":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{}},"v:2":{"f:aad":{"f:aaf":{}},"i:1":{}},"v:3":{"f:aaa":{},"k:{\"name\":\"first\"}":{},"i:2":{}},"v:\"aa\"":{"f:aab":{"f:aaf":{}},"f:aae":{},"k:{\"name\":\"first\"}":{"f:aad":{}},"i:2":{}},"v:\"ab\"":{"f:aaf":{"i:4":{}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:1":{"f:aae":{"i:4":{}}}},"v:true":{"k:{\"name\":\"second\"}":{"f:aaa":{}},"i:2":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"i:1":{"i:3":{"f:aaf":{}}},"i:2":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"v:1":{}}},"i:3":{"f:aab":{"v:true":{"v:\"aa\"":{}}},"f:aaf":{},"i:1":{}},"i:4":{"v:\"aa\"":{"f:aab":{"k:{\"name\":\"second\"}":{}}}}}''',
    r'''{"f:spec":{".":{},"f:apps":{".":{},"k:{\"name\":\" app-💻\"}":{".":{},"f:container":{".":{},"f:image":{},"f:name":{},"f:ports":{".":{},"k:{\"name\":\"port 🔑\"}":{".":{},"f:containerPort":{},"f:name":{}}}},"f:name":{}},"k:{\"name\":\" app-🚀\"}":{".":{},"f:container":{".":{},"f:image":{},"f:name":{},"f:ports":{".":{},"k:{\"name\":\"port-✅ \"}":{".":{},"f:containerPort":{},"f:name":{}}}},"f:name":{}}}}}''',
]


@pytest.mark.parametrize("text", GOLDEN, ids=["flat", "nested", "unicode"])
def test_fieldsv1_golden_round_trip(text):
    fs = fieldpath.decode(json.loads(text))
    assert compact(fieldpath.encode(fs)) == text
    assert fieldpath.decode(fieldpath.encode(fs)) == fs


def test_decode_normalizes_order_keys_and_values():
    # TestDeserializeForValidNonNormalized
    sent = json.loads('{"f:aad":{},"f:aaa":{},"k:{ \\"protocol\\":\\"udp\\",\\"port\\":443}":{},"v: 3":{},'
                      '"i:2":{},"v:true":{},"k:{\\"name\\":\\"first\\"}":{}}')
    assert compact(fieldpath.encode(fieldpath.decode(sent))) == (
        r'{"f:aaa":{},"f:aad":{},"k:{\"name\":\"first\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},'
        r'"v:3":{},"v:true":{},"i:2":{}}')


def test_decode_membership_and_errors():
    assert fieldpath.decode({"f:a": {".": {}, "f:b": {}}, "f:c": {"f:d": {}}}) == {
        ("f:a",), ("f:a", "f:b"), ("f:c", "f:d")}
    assert fieldpath.decode({"f:a": {"x:unknown": {}}}) == {("f:a",)}  # unknown kinds are dropped
    for bad in ({"k:{oops": {}}, {"f:a": []}, {"i:x": {}}, []):
        with pytest.raises(ValueError):
            fieldpath.decode(bad)


def test_tree_edit_keeps_order_and_sharing():
    tree = fieldpath.encode({("f:spec", "f:replicas"), ("f:metadata", "f:labels", "f:a")})
    edited = fieldpath.tree_edit(tree, remove=[("f:spec", "f:replicas")], add=[("f:data", "f:x")])
    assert compact(edited) == '{"f:data":{"f:x":{}},"f:metadata":{"f:labels":{"f:a":{}}}}'
    assert edited["f:metadata"] is tree["f:metadata"]
    assert fieldpath.tree_edit(edited, remove=[("f:data", "f:x"), ("f:metadata", "f:labels", "f:a")]) == {}
    assert fieldpath.tree_has(tree, ("f:spec", "f:replicas")) and not fieldpath.tree_has(tree, ("f:spec",))


def test_path_strings():
    assert fieldpath.path_string(("f:spec", "f:containers", 'k:{"name":"c"}', "f:image")) == \
        '.spec.containers[name="c"].image'
    assert fieldpath.path_string(("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}', 'v:"a"', "i:3")) == \
        '.ports[containerPort=80,protocol="TCP"][="a"][3]'


# --- which fields an object sets -----------------------------------------------------------------

def test_fields_of_apply_configuration():
    fs = fieldpath.fields_of(deployment_config(), DEPLOYMENT)
    c = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"nginx"}')
    port = c + ("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')
    assert fs == {
        ("f:apiVersion",), ("f:kind",), ("f:metadata", "f:name"), ("f:metadata", "f:labels", "f:app"),
        ("f:spec", "f:replicas"), ("f:spec", "f:selector"),  # LabelSelector is an atomic map
        ("f:spec", "f:template", "f:metadata", "f:labels", "f:app"),
        c, c + ("f:name",), c + ("f:image",), port, port + ("f:containerPort",), port + ("f:protocol",),
    }


def test_fields_of_list_kinds():
    pod = {"metadata": {"finalizers": ["example.com/a", "b"]},
           "spec": {"containers": [{"name": "c", "args": ["--x", "--y"], "ports": [{"containerPort": 53, "protocol": "UDP"},
                                                                                   {"containerPort": 80}]}]}}
    fs = fieldpath.fields_of(pod, POD)
    c = ("f:spec", "f:containers", 'k:{"name":"c"}')
    assert ("f:metadata", "f:finalizers", 'v:"example.com/a"') in fs  # a set
    assert c + ("f:args",) in fs and not any(p[:len(c) + 1] == c + ("f:args",) and len(p) > len(c) + 1 for p in fs)
    # ports are keyed by containerPort and protocol; an omitted protocol is its default, TCP
    assert c + ("f:ports", 'k:{"containerPort":53,"protocol":"UDP"}') in fs
    assert c + ("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}', "f:containerPort") in fs


# --- ordinary writes -----------------------------------------------------------------------------

def defaulted_deployment():
    """A Deployment as kube-apiserver stores it after `kubectl create deployment` and defaulting."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "crud", "namespace": "default", "labels": {"app": "crud"}, "generation": 1},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "crud"}},
            "template": {"metadata": {"labels": {"app": "crud"}}, "spec": {
                "containers": [{"name": "crud-sha256-1", "image": "img", "imagePullPolicy": "Always", "resources": {},
                                "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File"}],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                "securityContext": {}, "terminationGracePeriodSeconds": 30}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
        "status": {}}


def test_update_on_create_matches_kube_apiserver():
    # managedFields of a real Deployment created by a console, as kube-apiserver wrote them:
    # Go structs that always exist (spec, template, strategy) get no "." entry, maps and
    # pointers that the create added (labels, rollingUpdate) do
    expected = r'''{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"crud-sha256-1\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}'''
    obj = defaulted_deployment()
    fieldmanager.update(None, obj, manager="GoogleCloudConsole", now="2023-01-12T12:17:59Z", schema=DEPLOYMENT,
                        reset_fields=MAIN_RESET)
    assert obj["metadata"]["managedFields"] == [{
        "manager": "GoogleCloudConsole", "operation": "Update", "apiVersion": "apps/v1",
        "time": "2023-01-12T12:17:59Z", "fieldsType": "FieldsV1", "fieldsV1": json.loads(expected)}]


def test_update_on_create_of_custom_resource_marks_spec():
    schema = Schema({}, {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}, "free": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}})
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
           "spec": {"size": 2, "free": {"a": {"b": 1}, "l": [1, 2]}}}
    fieldmanager.update(None, obj, manager="kubectl-create", now=T0, schema=schema)
    assert obj["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:spec": {".": {}, "f:free": {".": {}, "f:a": {".": {}, "f:b": {}}, "f:l": {}}, "f:size": {}}}


def test_custom_resource_metadata_is_object_meta():
    schema = Schema({}, {"type": "object", "properties": {"metadata": {"type": "object"},
                                                         "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}})
    cfg = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"app": "a"}},
           "spec": {"size": 1}}
    obj = fieldmanager.apply(None, cfg, manager="m", force=False, now=T0, schema=schema)
    assert obj["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:size": {}}}


def created(manager="kubectl-create"):
    obj = defaulted_deployment()
    fieldmanager.update(None, obj, manager=manager, now=T0, schema=DEPLOYMENT, reset_fields=MAIN_RESET)
    return persisted(obj)


def test_update_moves_changed_fields_to_the_writer():
    live = created()
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = 5
    new["metadata"]["labels"]["tier"] = "web"
    fieldmanager.update(live, new, manager="kubectl", now=T1, schema=DEPLOYMENT, reset_fields=MAIN_RESET)
    assert [(e["manager"], e["time"]) for e in new["metadata"]["managedFields"]] == [
        ("kubectl-create", T0), ("kubectl", T1)]
    assert paths(new, "kubectl") == {("f:spec", "f:replicas"), ("f:metadata", "f:labels", "f:tier")}
    creator = paths(new, "kubectl-create")
    assert ("f:spec", "f:replicas") not in creator and ("f:spec", "f:template", "f:spec", "f:dnsPolicy") in creator

    # a write that changes nothing keeps every entry (and time) as it was
    again = copy.deepcopy(new)
    again["metadata"]["resourceVersion"] = "7"
    fieldmanager.update(new, again, manager="kubectl", now=T2, schema=DEPLOYMENT, reset_fields=MAIN_RESET)
    assert again["metadata"]["managedFields"] == new["metadata"]["managedFields"]


def test_update_removing_a_field_drops_it_from_every_owner():
    live = created()
    new = copy.deepcopy(live)
    del new["metadata"]["labels"]
    fieldmanager.update(live, new, manager="kubectl-edit", now=T1, schema=DEPLOYMENT, reset_fields=MAIN_RESET)
    assert not any(p[:2] == ("f:metadata", "f:labels") for p in paths(new, "kubectl-create"))
    assert ("kubectl-edit", "Update", "") not in entries(new)  # removing owns nothing


def status_write(live):
    new = copy.deepcopy(live)
    new["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
    new["status"] = {"observedGeneration": 1, "replicas": 1, "conditions": [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
    new["spec"]["replicas"] = 9  # reset by the status strategy: not the writer's
    new["metadata"]["managedFields"] = []  # ignored on a subresource
    fieldmanager.update(live, new, manager="kube-controller-manager", operation_subresource="status", now=T1,
                        schema=DEPLOYMENT, reset_fields=STATUS_RESET)
    return new


def test_status_subresource_write():
    # conditions left out of the write still have Go's null times: owned, as kube-apiserver's
    # kubelet entries own `f:lastProbeTime`
    new = status_write(created())
    entry = entries(new)[("kube-controller-manager", "Update", "status")]
    assert entry["subresource"] == "status" and list(entry)[-1] == "subresource"
    assert compact(entry["fieldsV1"]) == (
        r'{"f:metadata":{"f:annotations":{".":{},"f:deployment.kubernetes.io/revision":{}}},'
        r'"f:status":{"f:conditions":{".":{},"k:{\"type\":\"Available\"}":{".":{},"f:lastTransitionTime":{},'
        r'"f:lastUpdateTime":{},"f:reason":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Progressing\"}":{".":{},'
        r'"f:lastTransitionTime":{},"f:lastUpdateTime":{},"f:reason":{},"f:status":{},"f:type":{}}},'
        r'"f:observedGeneration":{},"f:replicas":{}}}')
    assert ("f:spec", "f:replicas") in paths(new, "kubectl-create")


def test_sent_managed_fields():
    live = created()
    # [] resets tracking; an untracked object stays untracked on later writes
    reset = copy.deepcopy(live)
    reset["metadata"]["managedFields"] = []
    fieldmanager.update(live, reset, manager="kubectl", now=T1, schema=DEPLOYMENT)
    assert "managedFields" not in reset["metadata"]
    later = copy.deepcopy(reset)
    later["spec"]["replicas"] = 4
    fieldmanager.update(reset, later, manager="kubectl", now=T2, schema=DEPLOYMENT)
    assert "managedFields" not in later["metadata"]

    # invalid entries are ignored: the live ones stay
    bad = copy.deepcopy(live)
    bad["metadata"]["managedFields"] = [{"manager": "x", "operation": "Patch", "apiVersion": "v1"}]
    fieldmanager.update(live, bad, manager="kubectl", now=T1, schema=DEPLOYMENT)
    assert bad["metadata"]["managedFields"] == live["metadata"]["managedFields"]

    # valid ones replace them, canonicalized
    mine = copy.deepcopy(live)
    mine["metadata"]["managedFields"] = [{"manager": "importer", "operation": "Update", "apiVersion": "apps/v1",
                                          "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}},
                                                                                 "f:metadata": {"f:labels": {}}}}]
    fieldmanager.update(live, mine, manager="kubectl", now=T1, schema=DEPLOYMENT)
    assert mine["metadata"]["managedFields"] == [{
        "manager": "importer", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {}}, "f:spec": {"f:replicas": {}}}}]


def test_manager_defaults_and_unknown():
    live = created(manager="")
    assert live["metadata"]["managedFields"][0]["manager"] == "unknown"
    assert fieldmanager.manager_name(None, "kubectl/v1.37.1 (linux/amd64) kubernetes/abc") == "kubectl"
    assert fieldmanager.manager_name("helm", "Go-http-client/1.1") == "helm"
    assert fieldmanager.manager_name("", "Go-http-client/1.1") == "Go-http-client"
    assert fieldmanager.manager_name(None, "a\x07b" + "x" * 200) == "ab" + "x" * 126


def test_update_managers_are_capped():
    live = created()
    for i in range(11):
        new = copy.deepcopy(live)
        new["metadata"]["labels"][f"l{i}"] = "x"
        fieldmanager.update(live, new, manager=f"m{i:02}", now=f"2024-05-01T10:00:{i + 10}Z", schema=DEPLOYMENT)
        live = new
    managers = [e["manager"] for e in live["metadata"]["managedFields"]]
    assert len(managers) == 10 and "ancient-changes" in managers
    # the oldest of the version (the creator) and the next two merge into one entry
    assert "kubectl-create" not in managers and "m00" not in managers and "m01" not in managers
    ancient = paths(live, "ancient-changes")
    assert {("f:metadata", "f:labels", "f:l0"), ("f:metadata", "f:labels", "f:l1"), ("f:spec", "f:replicas")} <= ancient
    assert entries(live)[("ancient-changes", "Update", "")]["time"] == "2024-05-01T10:00:11Z"


def test_scale_subresource_write():
    live = created()
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 4
    fieldmanager.update_scale(live, scaled, manager="kubectl")
    assert entries(scaled)[("kubectl", "Update", "scale")] == {
        "manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}
    assert ("f:spec", "f:replicas") not in paths(scaled, "kubectl-create")
    # the same count again records nothing new
    again = copy.deepcopy(scaled)
    fieldmanager.update_scale(scaled, again, manager="hpa")
    assert again["metadata"]["managedFields"] == scaled["metadata"]["managedFields"]


def test_entries_are_sorted_as_upstream():
    live = created()
    new = status_write(live)
    obj = fieldmanager.apply(persisted(new), {"apiVersion": "apps/v1", "kind": "Deployment",
                                              "metadata": {"name": "crud", "labels": {"owner": "me"}}},
                             manager="zz", force=False, now=T3, schema=DEPLOYMENT)
    assert [(e["operation"], e["manager"]) for e in obj["metadata"]["managedFields"]] == [
        ("Apply", "zz"), ("Update", "kubectl-create"), ("Update", "kube-controller-manager")]


# --- server-side apply ---------------------------------------------------------------------------

def test_apply_creates():
    obj = fieldmanager.apply(None, deployment_config(), manager="apply_test", force=False, now=T0, schema=DEPLOYMENT)
    assert obj["spec"]["replicas"] == 3
    assert obj["metadata"]["managedFields"] == [{
        "manager": "apply_test", "operation": "Apply", "apiVersion": "apps/v1", "time": T0, "fieldsType": "FieldsV1",
        "fieldsV1": json.loads(
            r'{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":'
            r'{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},'
            r'"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},'
            r'"f:containerPort":{},"f:protocol":{}}}}}}}}}')}]


def test_apply_then_update_shares_configmap_fields():
    # test/integration/apiserver/apply TestApplyManagedFields
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "test-cm", "namespace": "default", "labels": {"test-label": "test"}},
          "data": {"key": "value"}}
    live = persisted(fieldmanager.apply(None, cm, manager="apply_test", force=False, now=T0, schema=CONFIGMAP))
    new = copy.deepcopy(live)
    new["data"] = {"key": "new value", "new-key": "value"}
    fieldmanager.update(live, new, manager="updater", now=T1, schema=CONFIGMAP)
    assert new["metadata"]["managedFields"] == [
        {"manager": "apply_test", "operation": "Apply", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:test-label": {}}}}},
        {"manager": "updater", "operation": "Update", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:key": {}, "f:new-key": {}}}}]


def test_apply_of_nothing_owns_nothing():
    # TestApplyRemovesEmptyManagedFields
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test-cm", "namespace": "default"}}
    live = persisted(fieldmanager.apply(None, cm, manager="apply_test", force=False, now=T0, schema=CONFIGMAP))
    assert "managedFields" not in live["metadata"]
    again = fieldmanager.apply(live, cm, manager="apply_test", force=False, now=T1, schema=CONFIGMAP)
    assert "managedFields" not in again["metadata"]


def test_apply_removes_fields_it_no_longer_applies():
    # TestApplyRemoveContainerPort
    live = persisted(fieldmanager.apply(None, deployment_config(), manager="apply_test", force=False, now=T0,
                                        schema=DEPLOYMENT))
    obj = fieldmanager.apply(live, deployment_config(ports=False), manager="apply_test", force=False, now=T1,
                             schema=DEPLOYMENT)
    assert obj["spec"]["template"]["spec"]["containers"] == [{"name": "nginx", "image": "nginx:latest"}]
    assert not any("f:ports" in p for p in paths(obj, "apply_test", "Apply"))
    assert obj["metadata"]["managedFields"][0]["time"] == T1


def test_apply_keeps_omitted_fields_another_manager_owns():
    cfg = deployment_config()
    live = persisted(fieldmanager.apply(None, cfg, manager="a", force=False, now=T0, schema=DEPLOYMENT))
    live = persisted(fieldmanager.apply(live, cfg, manager="b", force=False, now=T1, schema=DEPLOYMENT))
    assert paths(live, "a", "Apply") == paths(live, "b", "Apply")  # same values: shared, no conflict
    smaller = deployment_config(ports=False)
    del smaller["metadata"]["labels"]
    obj = fieldmanager.apply(live, smaller, manager="a", force=False, now=T2, schema=DEPLOYMENT)
    assert obj["metadata"]["labels"] == {"app": "nginx"}
    assert obj["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_apply_conflicts_and_force():
    # TestApplyUpdateApplyConflictForced
    live = persisted(fieldmanager.apply(None, deployment_config(), manager="apply_test", force=False, now=T0,
                                        schema=DEPLOYMENT))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    fieldmanager.update(live, scaled, manager="kubectl-client-side-apply", now=T1, schema=DEPLOYMENT)
    with pytest.raises(errors.APIError) as err:
        fieldmanager.apply(scaled, deployment_config(), manager="apply_test", force=False, now=T2, schema=DEPLOYMENT)
    assert (err.value.code, err.value.reason) == (409, "Conflict")
    assert err.value.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using '
                                 'apps/v1: .spec.replicas')
    assert err.value.status()["details"] == {"causes": [{
        "reason": "FieldManagerConflict", "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
        "field": ".spec.replicas"}]}

    obj = fieldmanager.apply(scaled, deployment_config(), manager="apply_test", force=True, now=T2, schema=DEPLOYMENT)
    assert obj["spec"]["replicas"] == 3
    assert ("f:spec", "f:replicas") in paths(obj, "apply_test", "Apply")
    assert ("kubectl-client-side-apply", "Update", "") not in entries(obj)


def test_apply_conflict_message_with_many_managers():
    live = persisted(fieldmanager.apply(None, deployment_config(), manager="bar", force=False, now=T0,
                                        schema=DEPLOYMENT))
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1"
    fieldmanager.update(live, new, manager="foo", operation_subresource="scale", now=T1, schema=DEPLOYMENT)
    cfg = deployment_config(replicas=7)
    cfg["metadata"]["labels"]["app"] = "web"
    cfg["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    with pytest.raises(errors.APIError) as err:
        fieldmanager.apply(persisted(new), cfg, manager="baz", force=False, now=T2, schema=DEPLOYMENT)
    assert err.value.message == (
        'Apply failed with 3 conflicts: conflicts with "bar":\n'
        '- .metadata.labels.app\n'
        'conflicts with "foo" with subresource "scale" using apps/v1:\n'
        '- .spec.replicas\n'
        '- .spec.template.spec.containers[name="nginx"].image')
    assert [c["message"] for c in err.value.details["causes"]] == [
        'conflict with "bar"', 'conflict with "foo" with subresource "scale" using apps/v1',
        'conflict with "foo" with subresource "scale" using apps/v1']


def test_apply_merges_lists_by_kind():
    live = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a"]}, "spec": {"containers": [
        {"name": "app", "image": "app:1", "args": ["--one", "--two"]}, {"name": "sidecar", "image": "side:1"}]}}
    fieldmanager.update(None, live, manager="creator", now=T0, schema=POD)
    live = persisted(live)
    cfg = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["b"]}, "spec": {"containers": [
        {"name": "app", "args": ["--three"], "ports": [{"containerPort": 53, "protocol": "UDP"},
                                                     {"containerPort": 53, "protocol": "TCP"}]}]}}
    obj = fieldmanager.apply(live, cfg, manager="tuner", force=True, now=T1, schema=POD)
    assert obj["metadata"]["finalizers"] == ["a", "b"]  # a set: union
    app, sidecar = obj["spec"]["containers"]  # a map-list: merged by name, live order kept
    assert sidecar == {"name": "sidecar", "image": "side:1"}
    assert app["image"] == "app:1" and app["args"] == ["--three"]  # args is atomic: replaced
    assert app["ports"] == cfg["spec"]["containers"][0]["ports"]  # both ports: containerPort+protocol keys
    owned = paths(obj, "tuner", "Apply")
    c = ("f:spec", "f:containers", 'k:{"name":"app"}')
    assert c + ("f:args",) in owned and c + ("f:ports", 'k:{"containerPort":53,"protocol":"TCP"}') in owned
    assert c + ("f:args",) not in paths(obj, "creator")


def test_apply_to_an_untracked_object_records_before_first_apply():
    live = persisted(deployment_config())
    cfg = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "deployment"}, "spec": {"replicas": 3}}
    obj = fieldmanager.apply(live, cfg, manager="scaler", force=False, now=T1, schema=DEPLOYMENT)
    assert [(e["manager"], e["operation"]) for e in obj["metadata"]["managedFields"]] == [
        ("scaler", "Apply"), ("before-first-apply", "Update")]
    cfg["spec"]["replicas"] = 4
    with pytest.raises(errors.APIError, match='conflict with "before-first-apply" using apps/v1: .spec.replicas'):
        fieldmanager.apply(live, cfg, manager="scaler", force=False, now=T1, schema=DEPLOYMENT)


def test_kubectl_moves_from_client_side_apply():
    cfg = deployment_config()
    live = copy.deepcopy(cfg)
    live["metadata"]["annotations"] = {fieldmanager.LAST_APPLIED: fieldpath.go_json(cfg) + "\n"}
    fieldmanager.update(None, live, manager="kubectl-client-side-apply", now=T0, schema=DEPLOYMENT)
    live = persisted(live)
    cfg = deployment_config(replicas=4)
    with pytest.raises(errors.APIError, match="kubectl-client-side-apply"):
        fieldmanager.apply(live, cfg, manager="someone", force=False, now=T1, schema=DEPLOYMENT)
    obj = fieldmanager.apply(live, cfg, manager="kubectl", force=False, now=T1, schema=DEPLOYMENT)
    assert obj["spec"]["replicas"] == 4
    assert ("f:spec", "f:replicas") in paths(obj, "kubectl", "Apply")
    # the annotation follows the applied configuration, as kubectl would have written it
    assert json.loads(obj["metadata"]["annotations"][fieldmanager.LAST_APPLIED]) == cfg
    assert obj["metadata"]["annotations"][fieldmanager.LAST_APPLIED].endswith("}\n")


def test_apply_with_status_reset_and_subresource():
    cfg = deployment_config()
    cfg["status"] = {"replicas": 9}
    obj = fieldmanager.apply(None, cfg, manager="m", force=False, now=T0, schema=DEPLOYMENT, reset_fields=MAIN_RESET)
    assert not any(p[0] == "f:status" for p in paths(obj, "m", "Apply"))
    status = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "deployment"},
              "status": {"replicas": 2}}
    obj = fieldmanager.apply(persisted(obj), status, manager="ctl", force=False, now=T1, schema=DEPLOYMENT,
                             subresource="status", reset_fields=STATUS_RESET)
    assert entries(obj)[("ctl", "Apply", "status")]["subresource"] == "status"
    assert paths(obj, "ctl", "Apply", "status") == {("f:status", "f:replicas")}


def test_apply_request_checks():
    with pytest.raises(errors.APIError) as err:
        fieldmanager.apply(None, {**deployment_config(), "apiVersion": "apps/v1beta1"}, manager="m", force=False,
                           now=T0, schema=DEPLOYMENT)
    assert (err.value.code, err.value.message) == (400, "invalid object type: apps/v1beta1, Kind=Deployment")
    with pytest.raises(errors.APIError, match="^invalid object type: /v1, Kind=Pod$"):
        fieldmanager.check_apply_object({"apiVersion": "v1", "kind": "Pod"}, api_version="apps/v1", kind="Deployment")
    cfg = deployment_config()
    cfg["metadata"]["managedFields"] = []
    with pytest.raises(errors.APIError, match="^metadata.managedFields must be nil$"):
        fieldmanager.apply(None, cfg, manager="m", force=False, now=T0, schema=DEPLOYMENT)
    cfg = deployment_config()
    cfg["spec"]["template"]["spec"]["containers"].append({"name": "nginx", "image": "x"})
    with pytest.raises(errors.APIError) as err:
        fieldmanager.apply(None, cfg, manager="m", force=False, now=T0, schema=DEPLOYMENT)
    assert err.value.code == 500 and err.value.message == (
        "failed to create typed patch object (/deployment; apps/v1, Kind=Deployment): "
        '.spec.template.spec.containers: duplicate entries for key [name="nginx"]')
    with pytest.raises(errors.APIError, match=r"^the name of the object \(other\) does not match the name on the URL"):
        fieldmanager.check_name({"metadata": {"name": "other"}}, "deployment", "default")


@pytest.mark.parametrize("apply, query, field, message", [
    pytest.param(True, {}, "fieldManager", "Required value: is required for apply patch", id="apply-needs-manager"),
    pytest.param(False, {"fieldManager": "m", "force": "false"}, "force",
                 "Forbidden: may not be specified for non-apply patch", id="force-only-for-apply"),
    pytest.param(False, {"fieldManager": "m" * 129}, "fieldManager",
                 "Too long: may not be more than 128 bytes", id="too-long"),
    pytest.param(True, {"fieldManager": "a\x07"}, "fieldManager",
                 'Invalid value: "a\x07": invalid character U+0007 (at position 1)', id="unprintable"),
])
def test_patch_options(apply, query, field, message):
    with pytest.raises(errors.APIError) as err:
        queryparams.validate_write_options("PatchOptions", MultiDict(query), apply=apply)
    assert (err.value.code, err.value.reason) == (422, "Invalid")
    assert err.value.message == f'PatchOptions.meta.k8s.io "" is invalid: {field}: {message}'
    assert err.value.details["group"] == "meta.k8s.io" and err.value.details["kind"] == "PatchOptions"
    queryparams.validate_write_options("PatchOptions", MultiDict(fieldManager="kubectl", force="true"), apply=True)


def test_parse_apply_body():
    yaml_body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  when: 2024-01-01\n  n: '1'\n"
    assert fieldmanager.parse_apply_body(yaml_body) == ({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
        "data": {"when": "2024-01-01", "n": "1"}}, [])
    assert fieldmanager.parse_apply_body(b'{\n\t"apiVersion": "v1"}')[0] == {"apiVersion": "v1"}
    assert fieldmanager.parse_apply_body(b"a: 1\na: 2\n")[1]  # a repeated key, for fieldValidation
    with pytest.raises(errors.APIError, match=r"^error decoding patch: json: cannot unmarshal array into Go value "
                                              r"of type map\[string\]interface \{\}$"):
        fieldmanager.parse_apply_body(b"- a\n- b\n")
    with pytest.raises(errors.APIError, match="^error decoding patch: error converting YAML to JSON: yaml: line"):
        fieldmanager.parse_apply_body(b"a: b: c\n")


# --- structured-merge-diff's own scenarios (merge/*_test.go), on an equivalent CRD schema ----------

SMD_SCHEMA = Schema({}, {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
    "struct": {"type": "object", "properties": {"name": {"type": "string"}, "value": {"type": "integer"}}},
    "listOfLists": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {
                        "name": {"type": "string"},
                        "value": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}}}})


def smd_run(ops):
    """Apply/Update operations as SMD's fixture runs them; returns the object without its envelope."""
    live = None
    for op, manager, body in ops:
        body = {"apiVersion": "v1", "kind": "T", "metadata": {"name": "x"}, **body}
        if op == "apply":
            live = fieldmanager.apply(live, body, manager=manager, force=False, now=T0, schema=SMD_SCHEMA)
        else:
            new = copy.deepcopy(body)
            new["metadata"]["managedFields"] = (live or {}).get("metadata", {}).get("managedFields")
            fieldmanager.update(live, new, manager=manager, now=T0, schema=SMD_SCHEMA)
            live = new
        live = persisted(live)
    managed = {e["manager"]: fieldpath.decode(e["fieldsV1"]) for e in live["metadata"].get("managedFields", [])}
    return {k: v for k, v in live.items() if k not in ("apiVersion", "kind", "metadata")}, managed


def item(name, *rest):
    return ("f:listOfLists", f'k:{{"name":"{name}"}}') + rest


def test_smd_remove_one_keep_one_with_dangling_subitem():
    obj, managed = smd_run([
        ("apply", "apply-one", {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c"]}]}),
        ("apply", "apply-two", {"listOfLists": [{"name": "b", "value": ["d"]}]}),
        ("update", "controller", {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c", "d", "e"]}]}),
        ("apply", "apply-one", {"listOfLists": [{"name": "a"}]}),
    ])
    assert obj == {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["d", "e"]}]}
    assert managed == {
        "apply-one": {item("a"), item("a", "f:name")},
        "apply-two": {item("b"), item("b", "f:name"), item("b", "f:value", 'v:"d"')},
        "controller": {item("b", "f:value", 'v:"e"')},
    }


def test_smd_remove_one_with_dangling_subitem_keep_one():
    obj, managed = smd_run([
        ("apply", "apply-one", {"listOfLists": [{"name": "a"}, {"name": "b", "value": ["c"]}]}),
        ("apply", "apply-two", {"listOfLists": [{"name": "a", "value": ["b"]}]}),
        ("update", "controller", {"listOfLists": [{"name": "a", "value": ["b"]}, {"name": "b", "value": ["c", "d"]}]}),
        ("apply", "apply-one", {"listOfLists": [{"name": "a"}]}),
    ])
    assert obj == {"listOfLists": [{"name": "a", "value": ["b"]}]}
    assert managed == {
        "apply-one": {item("a"), item("a", "f:name")},
        "apply-two": {item("a"), item("a", "f:name"), item("a", "f:value", 'v:"b"')},
    }


@pytest.mark.parametrize("ops, expected, owners", [
    pytest.param([("apply", "default", {"struct": {"name": "a", "value": 1}}), ("apply", "default", {})],
                 {}, {}, id="struct_apply_remove_all"),
    pytest.param([("apply", "default", {"struct": {"name": "a"}}), ("apply", "default", {"struct": None})],
                 {"struct": None}, {"default": {("f:struct",)}}, id="struct_apply_remove_dangling"),
    pytest.param([("apply", "default", {"struct": {"name": "a"}}),
                  ("update", "controller", {"struct": {"name": "a", "value": 1}}),
                  ("apply", "default", {})],
                 {"struct": {"value": 1}}, {"controller": {("f:struct", "f:value")}},
                 id="struct_apply_update_remove_all"),
    pytest.param([("apply", "default", {"struct": {"name": "a"}}),
                  ("update", "controller", {"struct": {"name": "b", "value": 1}}),
                  ("apply", "default", {"struct": None})],
                 {"struct": {"name": "b", "value": 1}}, None, id="struct_apply_update_took_over"),
])
def test_smd_struct_scenarios(ops, expected, owners):
    obj, managed = smd_run(ops)
    assert obj == expected
    if owners is not None:
        assert managed == owners
