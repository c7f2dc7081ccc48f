"""What the Service proxy programs, without a kernel (`lks.net.proxy.model`, `rules`): kube-proxy's
choice of Services, ports and endpoints, and the shape of the rules for the traffic policies."""

from __future__ import annotations

import pytest

from lks.net.proxy import model, rules

NODES = {"n1": model.Node("n1", "10.224.0.4", "10.244.0.0/24"), "n2": model.Node("n2", "10.224.0.5", "10.244.1.0/24")}


def _service(**spec) -> dict:
    return {"metadata": {"namespace": "default", "name": "web"},
            "spec": {"clusterIP": "10.0.0.50", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}}


def _slice(*endpoints: dict, ports=({"name": "http", "port": 8080, "protocol": "TCP"},), family="IPv4") -> dict:
    return {"addressType": family, "ports": list(ports), "endpoints": list(endpoints)}


def _ep(ip: str, node: str = "n1", **conditions) -> dict:
    return {"addresses": [ip], "nodeName": node, "conditions": conditions}


@pytest.mark.parametrize("spec", [
    pytest.param({"clusterIP": "None"}, id="headless"),
    pytest.param({"type": "ExternalName", "externalName": "example.com", "clusterIP": ""}, id="external-name"),
    pytest.param({"clusterIP": "10.0.0.10"}, id="served-by-lks"),
])
def test_services_without_rules(spec):
    assert model.service_ports(_service(**spec), [], skip_ips=frozenset({"10.0.0.10"})) == []


def test_ready_endpoints_of_the_matching_port_deduplicated():
    slices = [_slice(_ep("10.244.0.3"), _ep("10.244.0.2"), _ep("10.244.0.9", ready=False)),
              _slice(_ep("10.244.0.2")),  # the same endpoint in a second slice
              _slice(_ep("10.244.0.7"), ports=({"name": "other", "port": 9000, "protocol": "TCP"},)),
              _slice(_ep("10.244.0.8"), ports=({"name": "http", "port": 8080, "protocol": "UDP"},))]
    (sp,) = model.service_ports(_service(), slices)
    assert [(e.ip, e.port) for e in model.usable(sp.endpoints)] == [("10.244.0.2", 8080), ("10.244.0.3", 8080)]


def test_serving_terminating_endpoints_only_when_none_is_ready():
    eps = [model.Endpoint("10.244.0.2", 80, ready=False, serving=True, terminating=True),
           model.Endpoint("10.244.0.3", 80, ready=False, serving=False, terminating=True)]
    assert [e.ip for e in model.usable(eps)] == ["10.244.0.2"]
    assert [e.ip for e in model.usable([*eps, model.Endpoint("10.244.0.4", 80)])] == ["10.244.0.4"]


def test_affinity_and_policies_are_read():
    (sp,) = model.service_ports(_service(type="NodePort", sessionAffinity="ClientIP", externalTrafficPolicy="Local",
                                         internalTrafficPolicy="Local", ports=[{"port": 80, "nodePort": 30080}]), [])
    assert (sp.affinity, sp.node_port, sp.external_local, sp.internal_local) == (10800, 30080, True, True)


def _piece(**spec) -> rules.Piece:
    slices = [_slice(_ep("10.244.0.2", "n1"), _ep("10.244.1.2", "n2"))]
    piece = rules.Piece()
    for sp in model.service_ports(_service(**spec), slices):
        piece.merge(rules.service_piece(sp, nodes=NODES, pod_cidr="10.244.0.0/16"))
    return piece


def test_external_traffic_policy_local_sends_each_nodes_nodeport_to_its_own_endpoints():
    piece = _piece(type="NodePort", externalTrafficPolicy="Local", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    for ip, node_ep in (("10.224.0.4", "10.244.0.2"), ("10.224.0.5", "10.244.1.2")):
        chain = piece.elements[("service-nodeports", f"{ip} . tcp . 30080")].removeprefix("goto ")
        local = piece.chains[chain][-1].removeprefix("goto ")
        assert local.startswith("local-")
        (endpoint,) = [c for c in piece.chains if c.startswith("endpoint-") and c in piece.chains[local][-1]]
        assert piece.chains[endpoint][-1].endswith(f"dnat ip to {node_ep}:8080")
        assert piece.chains[chain][0] == "ip saddr 10.244.0.0/16 goto " + rules.service_chain(
            model.service_ports(_service(), [])[0])  # pods' traffic short-circuits to every endpoint


def test_no_endpoints_rejects_the_cluster_ip_and_nodeports():
    piece = rules.Piece()
    for sp in model.service_ports(_service(type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}]), []):
        piece.merge(rules.service_piece(sp, nodes=NODES, pod_cidr="10.244.0.0/16"))
    assert piece.elements[("no-endpoint-services", "10.0.0.50 . tcp . 80")] == "goto reject-chain"
    assert piece.elements[("no-endpoint-nodeports", "10.224.0.4 . tcp . 30080")] == "goto reject-chain"
    assert not piece.chains


def test_an_endpoint_change_updates_only_that_services_chains():
    before = _piece()
    after = rules.Piece()
    for sp in model.service_ports(_service(), [_slice(_ep("10.244.0.2", "n1"))]):
        after.merge(rules.service_piece(sp, nodes=NODES, pod_cidr="10.244.0.0/16"))
    script = rules.update(before, after)
    assert "element" not in script  # the Service's map entries stay
    assert script.count("delete chain") == 1 and "flush chain inet lks-proxy service-" in script
    assert rules.update(after, after) == ""
