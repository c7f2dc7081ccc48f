"""Gatekeeper mutation (`lks.policy.gatekeeper.mutation`): the location language, the four
mutators with Gatekeeper's checks and wording, schema conflicts, the fixed point, and in one
cluster on the memory store the mutating webhook answered in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from support import ADMIN, CA, TOKEN, backend, clock  # noqa: F401

from lks import store
from lks.clock import ManualClock
from lks.controllers.crd import CRDController
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.policy import gatekeeper
from lks.policy.gatekeeper.mutation import mutators, path, schema, system

POD_APPLY = [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}]


def mutator(kind: str, name: str, location: str, parameters: dict, **spec: object) -> dict:
    body: dict = {"location": location, "parameters": parameters, **spec}
    if kind != "AssignMetadata":
        body.setdefault("applyTo", POD_APPLY)
    version = "v1alpha1" if kind == "AssignImage" else "v1"
    return {"apiVersion": f"mutations.gatekeeper.sh/{version}", "kind": kind, "metadata": {"name": name},
            "spec": body}


def pod(*containers: dict, **meta: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", **meta},
            "spec": {"containers": list(containers)}}


def run(sys: system.System, obj: dict) -> bool:
    return sys.mutate(obj, group="", version="v1", kind="Pod", operation="CREATE", namespace_labels={})


@pytest.mark.parametrize("text, error", [
    pytest.param("spec.", "trailing separators are forbidden", id="trailing"),
    pytest.param("spec..a", 'unexpected token: expected field name or eof, got: SEPARATOR: "."', id="double-dot"),
    pytest.param("spec[name:]", 'unexpected token: expected key value or glob in listSpec, got: RBRACKET: "]"',
                 id="no-key"),
    pytest.param("spec.containers[name: a", "unexpected token: expected ']' following listSpec, got: EOF: \"\"",
                 id="open"),
])
def test_location_errors(text: str, error: str):
    with pytest.raises(path.PathError) as err:
        path.parse(text)
    assert str(err.value) == error


def test_location_round_trip():
    for text in ['spec.containers[name: *].securityContext.privileged', 'metadata.labels."app.kubernetes.io/name"',
                 "spec.ports[port: 80].protocol"]:
        assert path.render(path.parse(text)) == text


@pytest.mark.parametrize("obj, error", [
    pytest.param(mutator("Assign", "a", "metadata.labels.x", {"assign": {"value": "y"}}),
                 "assign a can't change metadata", id="assign-metadata"),
    pytest.param(mutator("Assign", "a", "spec.containers[name: *]", {"assign": {"value": {"name": "x"}}}),
                 "can't append to a globbed list", id="globbed-append"),
    pytest.param(mutator("Assign", "a", "spec.containers[name: x].name", {"assign": {"value": "y"}}),
                 "invalid path format: changing the item key is not allowed", id="key-change"),
    pytest.param(mutator("Assign", "a", "spec.x", {"assign": {"value": 1, "fromMetadata": {"field": "name"}}}),
                 "assign must only set one of `externalData`, `value` or `fromMetadata`: invalid assign field",
                 id="two-values"),
    pytest.param(mutator("Assign", "a", "spec.x", {"assign": {"externalData": {"provider": "p"}}}),
                 "external data feature flag is not enabled", id="external-data"),
    pytest.param(mutator("Assign", "a", "spec.x", {"assign": {"value": 1}}, applyTo=[]),
                 "applyTo required for Assign mutator a", id="no-applyTo"),
    pytest.param(mutator("Assign", "a", "spec.containers[name: x].y", {
        "assign": {"value": 1}, "pathTests": [{"subPath": "spec.volumes", "condition": "MustExist"}]}),
        'all subpaths must be a prefix of the `location` value of the mutation: subpath "spec.volumes" is not a '
        'prefix of location "spec.containers[name: x].y"', id="pathtest-prefix"),
    pytest.param(mutator("AssignMetadata", "m", "metadata.name", {"assign": {"value": "x"}}),
                 "invalid location for assignmetadata m: metadata.name", id="metadata-location"),
    pytest.param(mutator("AssignMetadata", "m", "metadata.labels.a", {"assign": {"value": 3}}),
                 'spec.parameters.assign.value field must be a string for AssignMetadata "m"', id="metadata-value"),
    pytest.param(mutator("ModifySet", "s", "spec.containers[name: x]", {"values": {"fromList": ["a"]}}),
                 "final node in a modifyset location cannot be a keyed list", id="modifyset-list"),
    pytest.param(mutator("AssignImage", "i", "spec.containers[name: *].image", {"assignTag": "latest"}),
                 "assignImage i has invalid parameters: assignTag \"latest\" must be a valid docker image tag or "
                 "digest starting with ':' or '@'", id="image-tag"),
    pytest.param(mutator("AssignImage", "i", "spec.containers[name: *].image", {"assignPath": "a.b/c"}),
                 'assignImage i has invalid parameters: assignDomain must be set if the first part of assignPath '
                 '"a.b/c" can be interpretted as part of a domain', id="image-domain-like-path"),
])
def test_invalid_mutators(obj: dict, error: str):
    with pytest.raises(mutators.InvalidMutator) as err:
        mutators.build(obj)
    assert str(err.value) == error


def test_assign_keyed_list_glob_and_path_tests():
    sys = system.System()
    sys.upsert(mutators.build(mutator("Assign", "privileged", "spec.containers[name: *].securityContext.privileged",
                                      {"assign": {"value": False}})))
    sys.upsert(mutators.build(mutator("Assign", "only-if-set", "spec.containers[name: *].resources.limits.cpu", {
        "assign": {"value": "1"},
        "pathTests": [{"subPath": "spec.containers[name: *].resources", "condition": "MustExist"}]})))
    sys.upsert(mutators.build(mutator("Assign", "sidecar", "spec.containers[name: sidecar]", {
        "assign": {"value": {"name": "sidecar", "image": "proxy"}}})))
    obj = pod({"name": "a", "image": "nginx"}, {"name": "b", "image": "nginx", "resources": {}})
    assert run(sys, obj)
    containers = obj["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "b", "sidecar"]
    assert all(c["securityContext"] == {"privileged": False} for c in containers[:2])
    assert containers[2] == {"name": "sidecar", "image": "proxy"}  # an assigned element is replaced each time
    assert "resources" not in containers[0] and containers[1]["resources"] == {"limits": {"cpu": "1"}}
    assert not run(sys, obj)  # already at the fixed point


def test_modifyset_assignimage_assignmetadata_from_metadata():
    sys = system.System()
    sys.upsert(mutators.build(mutator("ModifySet", "args", "spec.containers[name: *].args", {
        "operation": "merge", "values": {"fromList": ["--verbose", "--x"]}})))
    sys.upsert(mutators.build(mutator("ModifySet", "prune", "spec.containers[name: *].args", {
        "operation": "prune", "values": {"fromList": ["--x"]}})))
    sys.upsert(mutators.build(mutator("AssignImage", "registry", "spec.containers[name: *].image", {
        "assignDomain": "myregistry.azurecr.io", "assignTag": ":v2"})))
    sys.upsert(mutators.build(mutator("AssignMetadata", "team", "metadata.labels.team", {"assign": {"value": "a"}})))
    sys.upsert(mutators.build(mutator("Assign", "ns-env", "spec.containers[name: *].env[name: NS].value", {
        "assign": {"fromMetadata": {"field": "namespace"}}})))
    obj = pod({"name": "a", "image": "docker.io/library/nginx:1.25", "args": ["--verbose"]},
              labels={"team": "keep"})
    assert run(sys, obj)
    c = obj["spec"]["containers"][0]
    assert c["image"] == "myregistry.azurecr.io/library/nginx:v2"
    assert c["args"] == ["--verbose"]  # merged, then the prune took --x out again: a fixed point
    assert c["env"] == [{"name": "NS", "value": "default"}]
    assert obj["metadata"]["labels"] == {"team": "keep"}  # AssignMetadata never changes a label


def test_schema_conflicts():
    sys = system.System()
    sys.upsert(mutators.build(mutator("Assign", "list", "spec.containers[name: *].image", {"assign": {"value": "x"}})))
    sys.upsert(mutators.build(mutator("Assign", "object", "spec.containers.foo", {"assign": {"value": "y"}})))
    ids = {("mutations.gatekeeper.sh", "Assign", "", "list"), ("mutations.gatekeeper.sh", "Assign", "", "object")}
    assert set(sys.conflicts) == ids
    assert schema.describe(sys.conflicts[next(iter(ids))]) == (
        "the following mutators have conflicting schemas: [Assign.mutations.gatekeeper.sh /list,"
        "Assign.mutations.gatekeeper.sh /object]")
    obj = pod({"name": "a", "image": "nginx"})
    assert not run(sys, obj)  # conflicting mutators are not applied
    sys.remove(("mutations.gatekeeper.sh", "Assign", "", "object"))
    assert not sys.conflicts and run(sys, obj) and obj["spec"]["containers"][0]["image"] == "x"


def test_json_patch():
    old = {"a": 1, "b": [1, 2], "c": {"d": "x"}}
    new = {"a": 1, "b": [1, 2, 3], "c": {"d": "y", "e/f": 1}}
    assert system.json_patch(old, new) == [
        {"op": "replace", "path": "/b", "value": [1, 2, 3]}, {"op": "replace", "path": "/c/d", "value": "y"},
        {"op": "add", "path": "/c/e~1f", "value": 1}]


# -- in one cluster --------------------------------------------------------------------------

@pytest.fixture
async def cluster(backend: store.Backend, clock: ManualClock) -> AsyncIterator[Cluster]:  # noqa: F811
    c = Cluster(id="gkm", name="gkm", kubernetes_version="1.36", backend=backend, ca=CA,
                tokens={TOKEN: ADMIN}, clock=clock)
    await c.start()
    crds = CRDController(c)
    await crds.start()
    await gatekeeper.configure(c, enabled=True)
    yield c
    await gatekeeper.stop(c.id)
    await crds.stop()
    await c.stop()


async def until(check, tries: int = 400):
    for _ in range(tries):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def enforced(cluster: Cluster, kind: str, name: str) -> list:
    reg = cluster.registry("mutations.gatekeeper.sh", "v1alpha1" if kind == "AssignImage" else "v1",
                           mutators.KINDS[kind])

    async def by_pod():
        obj = await reg.get_or_none(None, name)
        return ((obj or {}).get("status") or {}).get("byPod")
    return await until(by_pod)


async def test_mutating_webhook_in_cluster(cluster: Cluster):
    hooks = cluster.registry("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
    hook = (await hooks.get(None, "gatekeeper-mutating-webhook-configuration"))["webhooks"][0]
    assert (hook["name"], hook["failurePolicy"], hook["reinvocationPolicy"]) == ("mutation.gatekeeper.sh", "Ignore",
                                                                                 "Never")
    assign = cluster.registry("mutations.gatekeeper.sh", "v1", "assign")
    await assign.create(None, mutator("Assign", "always-pull", "spec.containers[name: *].imagePullPolicy",
                                      {"assign": {"value": "Always"}}), WriteOptions(user=ADMIN))
    by_pod = await enforced(cluster, "Assign", "always-pull")
    assert by_pod[0]["enforced"] is True and by_pod[0]["id"] == "gatekeeper-controller-manager"
    statuses = cluster.registry("status.gatekeeper.sh", "v1beta1", "mutatorpodstatuses")
    mine = await statuses.get("gatekeeper-system", "gatekeeper--controller--manager-assign-always--pull")
    assert mine["status"]["enforced"] is True
    assert mine["metadata"]["labels"]["internal.gatekeeper.sh/mutator-kind"] == "Assign"
    await cluster.registry("", "v1", "serviceaccounts").create("default", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}, WriteOptions(user=ADMIN))
    pods = cluster.registry("", "v1", "pods")
    created = await pods.create("default", pod({"name": "a", "image": "nginx"}), WriteOptions(user=ADMIN))
    assert created["spec"]["containers"][0]["imagePullPolicy"] == "Always"

    with pytest.raises(errors.APIError) as refused:
        await assign.create(None, mutator("Assign", "bad", "metadata.labels.x", {"assign": {"value": "y"}}),
                            WriteOptions(user=ADMIN))
    assert refused.value.code == 422
    assert refused.value.message == ('admission webhook "validation.gatekeeper.sh" denied the request: '
                                     "assign bad can't change metadata")
    await assign.delete(None, "always-pull", deletion.DeleteOptions())

    async def gone():
        return await statuses.get_or_none("gatekeeper-system",
                                          "gatekeeper--controller--manager-assign-always--pull") is None
    await until(gone)


async def test_mutator_name_limit_and_labels_kept(cluster: Cluster):
    assign = cluster.registry("mutations.gatekeeper.sh", "v1", "assign")
    obj = mutator("Assign", "x" * 64, "spec.x", {"assign": {"value": 1}})
    with pytest.raises(errors.APIError) as refused:
        await assign.create(None, obj, WriteOptions(user=ADMIN))
    # upstream's API server says `metadata.name: Too long` (422) from the CRD's schema first
    assert refused.value.message.endswith("resource cannot have metadata.name larger than 63 char; length: 64")
    labelled = mutator("Assign", "labelled", "spec.x", {"assign": {"value": 1}})
    labelled["metadata"]["labels"] = {"team": "a"}
    made = await assign.create(None, labelled, WriteOptions(user=ADMIN, field_validation="Strict"))
    assert made["metadata"]["labels"] == {"team": "a"}  # ObjectMeta is not pruned by the CRD's metadata schema
