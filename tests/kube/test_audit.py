"""The audit policy's rule matching as upstream's policy checker, its validation, and the sink's
size rotation."""

from __future__ import annotations

import json
import re

import pytest

from lks.kube import audit
from lks.kube.authn import User
from lks.kube.http import requestinfo

JANE = User("jane", ("devs", "system:authenticated"))


def level(policy: dict, method: str, path: str, user: User = JANE) -> str:
    info = requestinfo.parse(method, path, {})
    return audit.parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", **policy}).level_of(
        user, info.verb, info)[0]


@pytest.mark.parametrize(("rule", "method", "path", "want"), [
    ({"resources": [{"group": "", "resources": ["pods"]}]}, "GET", "/api/v1/namespaces/a/pods/x", "Metadata"),
    ({"resources": [{"group": "", "resources": ["pods"]}]}, "GET", "/api/v1/namespaces/a/pods/x/log", "None"),
    ({"resources": [{"group": "", "resources": ["pods/*"]}]}, "GET", "/api/v1/namespaces/a/pods/x/log", "Metadata"),
    ({"resources": [{"group": "", "resources": ["*/status"]}]}, "GET", "/api/v1/namespaces/a/pods/x/status",
     "Metadata"),
    ({"resources": [{"group": "", "resources": ["*/status"]}]}, "GET", "/api/v1/namespaces/a/pods/x", "None"),
    ({"resources": [{"group": "apps"}]}, "GET", "/apis/apps/v1/deployments", "Metadata"),
    ({"resources": [{"group": "apps"}]}, "GET", "/api/v1/pods", "None"),
    ({"resources": [{"group": "", "resources": ["configmaps"], "resourceNames": ["c"]}]}, "GET",
     "/api/v1/namespaces/a/configmaps/c", "Metadata"),
    ({"resources": [{"group": "", "resources": ["configmaps"], "resourceNames": ["c"]}]}, "GET",
     "/api/v1/namespaces/a/configmaps/d", "None"),
    ({"namespaces": ["a"]}, "GET", "/api/v1/namespaces/a/secrets", "Metadata"),
    ({"namespaces": ["a"]}, "GET", "/api/v1/nodes", "None"),
    ({"namespaces": ["a"]}, "GET", "/version", "None"),
    ({"nonResourceURLs": ["/healthz*"]}, "GET", "/healthz/ping", "Metadata"),
    ({"nonResourceURLs": ["/healthz*"]}, "GET", "/api/v1/namespaces/healthz", "None"),
    ({"users": ["jane"], "verbs": ["create"]}, "POST", "/api/v1/namespaces/a/pods", "Metadata"),
    ({"users": ["jane"], "verbs": ["create"]}, "GET", "/api/v1/namespaces/a/pods", "None"),
    ({"userGroups": ["devs"]}, "DELETE", "/api/v1/namespaces/a/pods/x", "Metadata"),
    ({"userGroups": ["ops"]}, "DELETE", "/api/v1/namespaces/a/pods/x", "None"),
])
def test_rules_match_as_upstream(rule, method, path, want):
    assert level({"rules": [{"level": "Metadata", **rule}]}, method, path) == want


def test_the_first_matching_rule_wins_and_stages_add_up():
    policy = audit.parse_policy({
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
        "rules": [{"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
                  {"level": "RequestResponse", "omitStages": ["ResponseStarted"]}]})
    info = requestinfo.parse("GET", "/api/v1/namespaces/a/events", {})
    assert policy.level_of(JANE, info.verb, info)[0] == "None"
    info = requestinfo.parse("GET", "/api/v1/namespaces/a/pods", {})
    assert policy.level_of(JANE, info.verb, info) == ("RequestResponse",
                                                      frozenset({"RequestReceived", "ResponseStarted"}), False)
    assert level({"rules": []}, "GET", "/api/v1/pods") == "None"  # no rule: nothing logged


def test_omit_managed_fields_rule_overrides_policy():
    policy = audit.parse_policy({
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitManagedFields": True,
        "rules": [{"level": "Request", "resources": [{"group": "", "resources": ["pods"]}], "omitManagedFields": False},
                  {"level": "Request"}]})
    pods = requestinfo.parse("GET", "/api/v1/pods", {})
    nodes = requestinfo.parse("GET", "/api/v1/nodes", {})
    assert policy.level_of(JANE, pods.verb, pods)[2] is False
    assert policy.level_of(JANE, nodes.verb, nodes)[2] is True
    listing = {"kind": "PodList", "items": [{"metadata": {"name": "a", "managedFields": [{}]}}]}
    assert audit._without_managed_fields(listing) == {"kind": "PodList", "items": [{"metadata": {"name": "a"}}]}


@pytest.mark.parametrize(("doc", "why"), [
    ({"rules": [{"level": "Everything"}]}, "rules[0].level: must be one of None, Metadata, Request, RequestResponse"),
    ({"rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}]}, "non-resource URLs"),
    ({"omitStages": ["Later"], "rules": []}, "omitStages: must be one of"),
])
def test_bad_policies_are_refused(doc, why):
    with pytest.raises(audit.PolicyError, match=re.escape(why)):
        audit.parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", **doc})


async def test_the_file_rotates_past_its_size(tmp_path):
    sink = audit.Sink(tmp_path / "audit.log", max_bytes=1000, backups=2)
    for batch in range(7):  # ~600 bytes each: every second batch passes the size
        for i in range(30):
            sink.write(json.dumps({"batch": batch, "i": i}).encode() + b"\n")
        await sink.drain()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["audit.log", "audit.log.1", "audit.log.2"]  # the oldest went
    first = {name: json.loads((tmp_path / name).read_text().splitlines()[0])["batch"] for name in names}
    assert first == {"audit.log": 6, "audit.log.1": 4, "audit.log.2": 2}


def test_annotations_outside_a_request_go_nowhere():
    audit.annotate("k", "v")  # a controller's write: no request, nothing to annotate, no error
    audit.authorized(True, "")
