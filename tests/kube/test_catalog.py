import pytest

from lks.kube import catalog
from lks.kube.catalog import SUPPORTED_VERSIONS

CRUD = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@pytest.fixture(params=SUPPORTED_VERSIONS)
def cat(request):
    return catalog.load(request.param)


def test_load_is_cached_and_validates_versions():
    assert catalog.load() is catalog.load(catalog.DEFAULT_VERSION) is catalog.load("v1.36.3")
    assert catalog.load("1.34").schemas is not catalog.load("1.37").schemas
    for bad in ("1.30", "1.38", "2.0", "latest", ""):
        with pytest.raises(ValueError):
            catalog.load(bad)


@pytest.mark.parametrize("gv, resource, namespaced, short, kind", [
    ("v1", "pods", True, ("po",), "Pod"),
    ("v1", "services", True, ("svc",), "Service"),
    ("v1", "nodes", False, ("no",), "Node"),
    ("v1", "namespaces", False, ("ns",), "Namespace"),
    ("v1", "configmaps", True, ("cm",), "ConfigMap"),
    ("v1", "secrets", True, (), "Secret"),
    ("apps/v1", "deployments", True, ("deploy",), "Deployment"),
    ("apps/v1", "statefulsets", True, ("sts",), "StatefulSet"),
    ("batch/v1", "cronjobs", True, ("cj",), "CronJob"),
    ("autoscaling/v2", "horizontalpodautoscalers", True, ("hpa",), "HorizontalPodAutoscaler"),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions", False, ("crd", "crds"), "CustomResourceDefinition"),
    ("apiregistration.k8s.io/v1", "apiservices", False, (), "APIService"),
    ("rbac.authorization.k8s.io/v1", "clusterroles", False, (), "ClusterRole"),
])
def test_core_resources(cat, gv, resource, namespaced, short, kind):
    group, _, version = gv.rpartition("/")
    rt = cat.lookup(group, version, resource)
    assert rt is not None and rt.gv == gv
    assert (rt.namespaced, rt.short_names, rt.kind, rt.list_kind) == (namespaced, short, kind, kind + "List")
    assert rt.singular == kind.lower() and not rt.virtual
    assert cat.by_kind(group, version, kind) is rt
    assert rt.verbs == (tuple(v for v in CRUD if v != "deletecollection") if resource == "namespaces" else CRUD)
    assert rt.schema_name and rt.schema_name in cat.schemas


def test_categories(cat):
    all_ = {rt.resource for rt in cat.all() if "all" in rt.categories}
    assert all_ == {"pods", "replicationcontrollers", "services", "daemonsets", "deployments", "replicasets",
                    "statefulsets", "horizontalpodautoscalers", "cronjobs", "jobs"}
    assert cat.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions").categories == ("api-extensions",)


def test_pod_subresources(cat):
    subs = cat.lookup("", "v1", "pods").subresources
    resize = ["resize"] if catalog._key(cat.kubernetes_version) >= (1, 33) else []  # beta, on by default from 1.33
    assert sorted(subs) == ["attach", "binding", "ephemeralcontainers", "eviction", "exec", "log",
                            "portforward", "proxy", *resize, "status"]
    assert (subs["eviction"].group, subs["eviction"].version, subs["eviction"].kind) == ("policy", "v1", "Eviction")
    assert (subs["binding"].group, subs["binding"].version, subs["binding"].kind) == ("", "v1", "Binding")
    assert subs["exec"].kind == "PodExecOptions" and subs["exec"].verbs == ("create", "get")
    assert subs["log"].verbs == ("get",) and subs["status"].verbs == ("get", "patch", "update")
    if resize:
        assert subs["resize"].verbs == ("get", "patch", "update")


def test_scale_and_status_subresources(cat):
    for resource in ("deployments", "replicasets", "statefulsets"):
        subs = cat.lookup("apps", "v1", resource).subresources
        assert sorted(subs) == ["scale", "status"]
        assert (subs["scale"].group, subs["scale"].version, subs["scale"].kind) == ("autoscaling", "v1", "Scale")
    assert sorted(cat.lookup("", "v1", "namespaces").subresources) == ["finalize", "status"]
    assert cat.lookup("", "v1", "serviceaccounts").subresources["token"].group == "authentication.k8s.io"
    assert not cat.lookup("apps", "v1", "controllerrevisions").subresources


def test_every_served_resource_has_a_schema(cat):
    for rt in cat.all():
        assert rt.schema_name in cat.schemas, rt
        gvks = cat.schemas[rt.schema_name]["x-kubernetes-group-version-kind"]
        assert {"group": rt.group, "version": rt.version, "kind": rt.kind} in gvks
    # the data never claims a resource the schemas lack (the schema filter drops nothing)
    claimed = [e for e in catalog._data()["resources"] if catalog._served(e, cat.kubernetes_version)]
    assert len(claimed) == len(cat.all())


def test_only_stable_versions_are_served(cat):
    # and the legacy betas upstream kept on by default: flowcontrol's v1beta3 until 1.31
    legacy = {("flowcontrol.apiserver.k8s.io", "v1beta3")} if cat.kubernetes_version == "1.31" else set()
    for rt in cat.all():
        assert ("alpha" not in rt.version and "beta" not in rt.version) or (rt.group, rt.version) in legacy, rt.gv
    for group, versions in cat.groups():
        assert all(("alpha" not in v and "beta" not in v) or (group, v) in legacy for v in versions)


def test_groups_order_and_lookups(cat):
    groups = cat.groups()
    names = [g for g, _ in groups]
    assert groups[0] == ("", ["v1"])
    assert names[1:4] == ["apiregistration.k8s.io", "apps", "events.k8s.io"]
    assert dict(groups)["autoscaling"] == ["v2", "v1"]
    assert len(names) == len(set(names))
    assert "internal.apiserver.k8s.io" not in names and "lifecycle.k8s.io" not in names
    for group, versions in groups:
        for version in versions:
            rts = cat.resources(group, version)
            assert rts and [rt.resource for rt in rts] == sorted(rt.resource for rt in rts)
    assert cat.lookup("apps", "v1", "nope") is None and cat.resources("apps", "v1beta1") == []


def test_storage(cat):
    prefix = {(rt.group, rt.resource): rt.storage_prefix for rt in cat.all()}
    assert prefix["", "pods"] == "/registry/pods/"
    assert prefix["", "services"] == "/registry/services/specs/"
    assert prefix["", "endpoints"] == "/registry/services/endpoints/"
    assert prefix["", "nodes"] == "/registry/minions/"
    assert prefix["", "replicationcontrollers"] == "/registry/controllers/"
    assert prefix["networking.k8s.io", "ingresses"] == "/registry/ingress/"
    assert prefix["", "events"] == prefix["events.k8s.io", "events"] == "/registry/events/"
    assert prefix["apiextensions.k8s.io", "customresourcedefinitions"] == (
        "/registry/apiextensions.k8s.io/customresourcedefinitions/")
    assert prefix["apiregistration.k8s.io", "apiservices"] == "/registry/apiregistration.k8s.io/apiservices/"
    hpa = [cat.lookup("autoscaling", v, "horizontalpodautoscalers") for v in ("v1", "v2")]
    assert {rt.storage_version for rt in hpa} == {"v2"} and hpa[0].storage_prefix == hpa[1].storage_prefix
    ev = cat.lookup("events.k8s.io", "v1", "events")
    assert (ev.storage_group, ev.storage_version) == ("", "v1")
    assert cat.lookup("apps", "v1", "deployments").storage_group == "apps"
    stored = [rt for rt in cat.all() if not rt.virtual]
    owners = {}
    for rt in stored:  # one prefix, one (group, resource), apart from the cohabiting events
        owners.setdefault(rt.storage_prefix, set()).add((rt.storage_group, rt.resource))
    assert all(len(o) == 1 for o in owners.values()), owners


def test_virtual_resources(cat):
    virtual = {(rt.group, rt.resource) for rt in cat.all() if rt.virtual}
    assert virtual == {("", "bindings"), ("", "componentstatuses"),
                       ("authentication.k8s.io", "tokenreviews"), ("authentication.k8s.io", "selfsubjectreviews"),
                       ("authorization.k8s.io", "localsubjectaccessreviews"),
                       ("authorization.k8s.io", "selfsubjectaccessreviews"),
                       ("authorization.k8s.io", "selfsubjectrulesreviews"),
                       ("authorization.k8s.io", "subjectaccessreviews")}
    for rt in cat.all():
        if rt.virtual:
            assert rt.storage_prefix == ""
            assert rt.verbs == (("get", "list") if rt.resource == "componentstatuses" else ("create",))
    assert cat.lookup("authorization.k8s.io", "v1", "localsubjectaccessreviews").namespaced
    assert not cat.lookup("authorization.k8s.io", "v1", "subjectaccessreviews").namespaced


def test_differences_between_versions():
    def gvrs(v):
        return {(rt.group, rt.version, rt.resource) for rt in catalog.load(v).all()}

    assert gvrs("1.34") == gvrs("1.35")
    assert gvrs("1.36") - gvrs("1.35") == {("admissionregistration.k8s.io", "v1", "mutatingadmissionpolicies"),
                                           ("admissionregistration.k8s.io", "v1", "mutatingadmissionpolicybindings")}
    assert gvrs("1.37") - gvrs("1.36") == {("certificates.k8s.io", "v1", "clustertrustbundles"),
                                           ("certificates.k8s.io", "v1", "podcertificaterequests"),
                                           ("resource.k8s.io", "v1", "devicetaintrules"),
                                           ("storagemigration.k8s.io", "v1", "storageversionmigrations")}
    assert gvrs("1.34") <= gvrs("1.37")
    groups34 = [g for g, _ in catalog.load("1.34").groups()]
    groups37 = [g for g, _ in catalog.load("1.37").groups()]
    assert groups37 == groups34 + ["storagemigration.k8s.io"]
    # resource.k8s.io/v1 (DRA) and VolumeAttributesClass are GA from 1.34, ServiceCIDR/IPAddress from 1.33
    for v in ("1.34", "1.35", "1.36", "1.37"):
        cat = catalog.load(v)
        assert cat.lookup("resource.k8s.io", "v1", "resourceclaims").subresources.keys() == {"status"}
        assert cat.lookup("storage.k8s.io", "v1", "volumeattributesclasses").short_names == ("vac",)
        assert cat.lookup("networking.k8s.io", "v1", "servicecidrs") is not None
    dra = {("resource.k8s.io", "v1", r) for r in ("deviceclasses", "resourceclaims", "resourceclaimtemplates",
                                                  "resourceslices")}
    cidrs = {("networking.k8s.io", "v1", "servicecidrs"), ("networking.k8s.io", "v1", "ipaddresses")}
    vac = {("storage.k8s.io", "v1", "volumeattributesclasses")}
    assert gvrs("1.34") - gvrs("1.33") == dra | vac and gvrs("1.33") - gvrs("1.34") == set()
    assert gvrs("1.33") - gvrs("1.32") == cidrs and gvrs("1.32") <= gvrs("1.33")
    # 1.32 stops serving flowcontrol.apiserver.k8s.io/v1beta3 (deprecated in 1.29)
    beta3 = {("flowcontrol.apiserver.k8s.io", "v1beta3", r) for r in ("flowschemas", "prioritylevelconfigurations")}
    assert gvrs("1.31") - gvrs("1.32") == beta3 and gvrs("1.32") <= gvrs("1.31")
    assert dict(catalog.load("1.31").groups())["flowcontrol.apiserver.k8s.io"] == ["v1", "v1beta3"]
    assert dict(catalog.load("1.32").groups())["flowcontrol.apiserver.k8s.io"] == ["v1"]
    fs = catalog.load("1.31").lookup("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas")
    assert (fs.storage_prefix, fs.storage_gv) == ("/registry/flowschemas/", "flowcontrol.apiserver.k8s.io/v1")
