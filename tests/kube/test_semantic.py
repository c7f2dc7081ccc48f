"""`lks.kube.semantic`: JSON texts of one Go value compare and hash alike."""

from __future__ import annotations

import copy

import pytest

from lks.controllers import deployment_util as du
from lks.controllers import history
from lks.kube import semantic

SENT = {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx", "envFrom": [{"configMapRef": {"name": "cm"}}]}],
                 "securityContext": {}}}
# what client-go writes back for the same template
ROUND_TRIP = {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {}, "env": [], "stdin": False,
                                       "envFrom": [{"configMapRef": {"name": "cm"}}]}],
                       "securityContext": {}, "volumes": None}}


def test_round_trip_is_the_same_value():
    assert semantic.canonical_template(ROUND_TRIP) == semantic.canonical_template(SENT)
    assert du.compute_hash(ROUND_TRIP, None) == du.compute_hash(SENT, None)
    assert du.equal_ignore_hash(du.template_with_hash(ROUND_TRIP, "abc"), SENT)
    assert history.compute_hash(ROUND_TRIP, 0) == history.compute_hash(SENT, 0)
    a, b = history.template_patch(ROUND_TRIP), history.template_patch(SENT)
    assert history.compute_hash(a, 0) == history.compute_hash(b, 0) and history.same_data(a, b)


@pytest.mark.parametrize("change", [
    pytest.param(lambda t: t["spec"].update(securityContext=None), id="pointer-struct-nil-vs-empty"),
    pytest.param(lambda t: t["spec"]["containers"][0].update(resources={"limits": {"cpu": "1"}}), id="resources"),
    pytest.param(lambda t: t["spec"]["containers"][0].update(securityContext={"privileged": False}),
                 id="pointer-bool-false"),
    pytest.param(lambda t: t["spec"].update(terminationGracePeriodSeconds=0), id="pointer-zero"),
    pytest.param(lambda t: t["spec"]["containers"][0]["envFrom"][0]["configMapRef"].update(name="other"),
                 id="embedded-struct-field"),
])
def test_different_values_stay_different(change):
    other = copy.deepcopy(SENT)
    change(other)
    assert semantic.canonical_template(other) != semantic.canonical_template(SENT)
    assert du.compute_hash(other, None) != du.compute_hash(SENT, None)
    assert not du.equal_ignore_hash(other, SENT)


def test_unknown_keys_and_special_types_are_kept():
    data = {"spec": {"template": {**SENT, "$patch": "replace"}}}
    assert semantic.canonical(data, "k8s.io.api.apps.v1.StatefulSet")["spec"]["template"]["$patch"] == "replace"
    port = {"containerPort": 80, "protocol": "TCP", "hostPort": 0}
    assert semantic.canonical(port, "k8s.io.api.core.v1.ContainerPort") == {"containerPort": 80, "protocol": "TCP"}
    probe = {"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 0}
    assert semantic.canonical(probe, "k8s.io.api.core.v1.Probe") == {"httpGet": {"port": "http", "path": "/"}}
