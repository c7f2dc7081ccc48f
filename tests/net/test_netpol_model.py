"""The NetworkPolicy evaluator (`lks.net.netpol.model`) against upstream's truth tables
(kubernetes test/e2e/network/netpol/network_policy.go): namespaces x, y, z, pods a, b, c in
each (label `pod=<name>`, container ports serve-80-tcp ... serve-81-udp), every pair probed
but loopback (ignored upstream), the expected matrix built the way upstream's Reachability is."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from lks.net.netpol import model

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PORTS = tuple((f"serve-{n}-{p.lower()}", n, p) for n in (80, 81) for p in ("TCP", "UDP", "SCTP"))
IPS = {f"{ns}/{p}": f"10.244.{i}.{j + 2}" for i, ns in enumerate(NAMESPACES) for j, p in enumerate(PODS)}
ALL = {key: model.Pod(key.split("/")[0], key.split("/")[1], {"pod": key.split("/")[1]}, (ip,), PORTS)
       for key, ip in IPS.items()}
NS_LABELS = {ns: {"ns": ns} for ns in NAMESPACES}


def policy(name: str, pod_labels: dict | None = None, *, ingress: list | None = None, egress: list | None = None,
           types: list | None = None, ns: str = "x", selector: dict | None = None) -> dict:
    spec: dict = {"podSelector": selector if selector is not None else {"matchLabels": pod_labels or {}}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    if types is not None:
        spec["policyTypes"] = types
    elif ingress is None and egress is not None:
        spec["policyTypes"] = ["Egress"]  # upstream's SetSpecEgressRules sets only Egress
    elif ingress is not None and egress is not None:
        spec["policyTypes"] = ["Ingress", "Egress"]
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


class Reach:
    """upstream's Reachability: every pair allowed until told otherwise."""

    def __init__(self, pods: list[str]):
        self.pods = pods
        self.want = {(a, b): True for a in pods for b in pods}

    def peer(self, frm: Callable[[str], bool], to: Callable[[str], bool], value: bool) -> Reach:
        for a, b in self.want:
            if frm(a) and to(b):
                self.want[(a, b)] = value
        return self

    def expect(self, a: str, b: str, value: bool) -> Reach:
        self.want[(a, b)] = value
        return self

    def all_ingress(self, b: str, value: bool) -> Reach:
        return self.peer(lambda _: True, lambda p: p == b, value)

    def all_egress(self, a: str, value: bool) -> Reach:
        return self.peer(lambda p: p == a, lambda _: True, value)


def ns(name: str) -> Callable[[str], bool]:
    return lambda p: p.split("/")[0] == name


def anyone(_: str) -> bool:
    return True


def pod(key: str) -> Callable[[str], bool]:
    return lambda p: p == key


def observed(policies: list[dict], pods: list[str], port: int, protocol: str) -> dict[tuple[str, str], bool]:
    return {(a, b): model.check(policies, NS_LABELS, ALL[a], ALL[b], port, protocol).allowed
            for a, b in itertools.product(pods, pods)}


def assert_matrix(policies: list[dict], reach: Reach, port: int = 80, protocol: str = "TCP") -> None:
    got = observed(policies, reach.pods, port, protocol)
    wrong = {pair: got[pair] for pair, want in reach.want.items() if pair[0] != pair[1] and got[pair] != want}
    assert not wrong, f"port {port}/{protocol}: {wrong}"


NS_Y = {"matchLabels": {model.NAMESPACE_NAME: "y"}}
NOT_X = {"matchExpressions": [{"key": model.NAMESPACE_NAME, "operator": "NotIn", "values": ["x"]}]}
A = {"pod": "a"}


def _case(pods: str, policies: list[dict], build: Callable[[Reach], object], port: int = 80, protocol: str = "TCP"):
    return pods.split(), policies, build, port, protocol


CASES = [
    pytest.param(*_case("x/a x/b y/a y/b", [policy("deny-ingress", ingress=[])],
                        lambda r: r.peer(anyone, ns("x"), False)), id="default-deny-ingress"),
    pytest.param(*_case("x/a x/b y/a", [policy("deny-all", ingress=[], egress=[])],
                        lambda r: (r.peer(anyone, ns("x"), False), r.peer(ns("x"), anyone, False))),
                 id="default-deny-all"),
    pytest.param(*_case("x/a x/b x/c y/a", [policy("x-a-allows-x-b", A, ingress=[
        {"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}])],
        lambda r: (r.all_ingress("x/a", False), r.expect("x/b", "x/a", True))), id="pod-selector"),
    pytest.param(*_case("x/a x/b y/a", [policy("deny-all", ingress=[]), policy("allow-all-to-a", A, ingress=[
        {"from": [{"podSelector": {}, "namespaceSelector": {}}]}])],
        lambda r: (r.all_ingress("x/a", True), r.all_ingress("x/b", False))), id="allow-ingress-for-a-target"),
    pytest.param(*_case("x/a x/b y/a z/a", [policy("allow-from-another-ns", A, ingress=[
        {"from": [{"namespaceSelector": {"matchLabels": {}}}]}])], lambda r: None), id="all-namespaces"),
    pytest.param(*_case("x/a x/b y/a z/a", [policy("allow-client-a-via-ns-selector", A, ingress=[
        {"from": [{"namespaceSelector": NS_Y}]}])],
        lambda r: (r.peer(ns("x"), pod("x/a"), False), r.peer(ns("z"), pod("x/a"), False))),
        id="namespace-selector"),
    pytest.param(*_case("x/a x/b y/a", [policy("x-a-allows-x-b", A, ingress=[{"from": [{"podSelector": {
        "matchExpressions": [{"key": "pod", "operator": "In", "values": ["b"]}]}}]}])],
        lambda r: (r.all_ingress("x/a", False), r.expect("x/b", "x/a", True))), id="pod-match-expressions"),
    pytest.param(*_case("x/a x/b x/c y/a", [policy("or", A, ingress=[{"from": [
        {"namespaceSelector": NOT_X}, {"podSelector": {"matchLabels": {"pod": "b"}}}]}])],
        lambda r: (r.expect("x/a", "x/a", False), r.expect("x/c", "x/a", False))), id="pod-or-namespace-selector"),
    pytest.param(*_case("x/a x/b y/a y/b z/b", [policy("and", A, ingress=[{"from": [
        {"namespaceSelector": NOT_X, "podSelector": {"matchLabels": {"pod": "b"}}}]}])],
        lambda r: (r.all_ingress("x/a", False), r.expect("y/b", "x/a", True), r.expect("z/b", "x/a", True))),
        id="pod-and-namespace-selector"),
    pytest.param(*_case("x/a x/b y/a y/b y/c", [policy("multi", A, ingress=[{"from": [
        {"namespaceSelector": NOT_X, "podSelector": {
            "matchExpressions": [{"key": "pod", "operator": "In", "values": ["b", "c"]}]}}]}])],
        lambda r: (r.peer(ns("x"), pod("x/a"), False), r.expect("y/a", "x/a", False))),
        id="multiple-pod-and-namespace-selectors"),
    pytest.param(*_case("x/a x/b y/a y/b z/a", [policy("port-81", A, ingress=[
        {"from": [{"namespaceSelector": NS_Y}], "ports": [{"port": 81, "protocol": "TCP"}]}])],
        lambda r: (r.peer(ns("x"), pod("x/a"), False), r.peer(ns("y"), pod("x/a"), True),
                   r.peer(ns("z"), pod("x/a"), False)), 81), id="ports-81"),
    pytest.param(*_case("x/a x/b y/a y/b z/a", [policy("port-81", A, ingress=[
        {"from": [{"namespaceSelector": NS_Y}], "ports": [{"port": 81, "protocol": "TCP"}]}])],
        lambda r: r.all_ingress("x/a", False), 80), id="ports-81-probed-on-80"),
    pytest.param(*_case("x/a x/b y/a y/b z/a", [
        policy("port-81", A, ingress=[{"from": [{"namespaceSelector": NS_Y}], "ports": [{"port": 81}]}]),
        policy("port-80", A, ingress=[{"from": [{"namespaceSelector": NS_Y}], "ports": [{"port": 80}]}])],
        lambda r: (r.peer(ns("x"), pod("x/a"), False), r.peer(ns("z"), pod("x/a"), False))),
        id="stacked-policies-union"),
    pytest.param(*_case("x/a x/b y/a", [policy("allow-all", ingress=[{}])], lambda r: None, 81), id="allow-all"),
    pytest.param(*_case("x/a x/b y/a", [policy("named", ingress=[{"ports": [{"port": "serve-81-tcp"}]}])],
                        lambda r: None, 81), id="named-port-81-open"),
    pytest.param(*_case("x/a x/b y/a", [policy("named", ingress=[{"ports": [{"port": "serve-81-tcp"}]}])],
                        lambda r: r.peer(anyone, ns("x"), False), 80), id="named-port-80-closed"),
    pytest.param(*_case("x/a x/b y/a z/a", [policy("named", A, ingress=[
        {"from": [{"namespaceSelector": NS_Y}], "ports": [{"port": "serve-80-tcp", "protocol": "TCP"}]}])],
        lambda r: (r.peer(ns("x"), pod("x/a"), False), r.peer(ns("z"), pod("x/a"), False))),
        id="namespace-on-named-port"),
    pytest.param(*_case("x/a y/a", [policy("egress-named", egress=[{"ports": [{"port": "serve-80-tcp"}]}])],
                        lambda r: None, 80), id="egress-named-port-80"),
    pytest.param(*_case("x/a y/a", [policy("egress-named", egress=[{"ports": [{"port": "serve-80-tcp"}]}])],
                        lambda r: r.peer(ns("x"), anyone, False), 81), id="egress-named-port-81"),
    pytest.param(*_case("x/a x/b y/a", [policy("deny-egress", egress=[])],
                        lambda r: r.peer(ns("x"), anyone, False)), id="deny-egress"),
    pytest.param(*_case("x/a x/b x/c y/a", [policy("both", A, ingress=[
        {"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}], egress=[{"ports": [{"port": 80}]}])],
        lambda r: (r.all_ingress("x/a", False), r.all_egress("x/a", False), r.expect("x/b", "x/a", True)), 81),
        id="ingress-and-egress-together-81"),
    pytest.param(*_case("x/a y/a y/b", [
        policy("allow-to-ns-y-pod-a", A, egress=[{"to": [{"namespaceSelector": NS_Y, "podSelector": {
            "matchLabels": A}}]}]),
        policy("allow-from-xa-on-ya", A, ns="y", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {
            model.NAMESPACE_NAME: "x"}}, "podSelector": {"matchLabels": A}}]}]),
        policy("allow-from-xa-on-yb", {"pod": "b"}, ns="y", ingress=[{"from": [{"namespaceSelector": {
            "matchLabels": {model.NAMESPACE_NAME: "x"}}, "podSelector": {"matchLabels": A}}]}])],
        lambda r: (r.peer(pod("x/a"), anyone, False), r.peer(anyone, pod("y/a"), False),
                   r.expect("x/a", "y/a", True), r.peer(anyone, pod("y/b"), False))),
        id="egress-denies-what-ingress-allows"),
    pytest.param(*_case("x/a y/a", [policy("tcp-only", A, ingress=[{"ports": [{"protocol": "TCP"}]}])],
                        lambda r: None), id="any-port-on-a-protocol-tcp"),
    pytest.param(*_case("x/a y/a", [policy("tcp-only", A, ingress=[{"ports": [{"protocol": "TCP"}]}])],
                        lambda r: r.all_ingress("x/a", False), 80, "UDP"), id="any-port-on-a-protocol-udp"),
    pytest.param(*_case("x/a y/a", [policy("port-80", ingress=[{"ports": [{"port": 80}]}]),
                                    policy("allow", ingress=[{}])], lambda r: None, 81),
                 id="ingress-allow-all-takes-precedence"),
    pytest.param(*_case("x/a y/a", [policy("deny-ingress", ingress=[]), policy("sctp", A, ingress=[
        {"ports": [{"port": 81, "protocol": "SCTP"}]}])], lambda r: r.peer(anyone, ns("x"), False), 81),
        id="sctp-is-not-tcp"),
    pytest.param(*_case("x/a y/a", [policy("udp", A, ingress=[{"ports": [{"port": 81, "protocol": "UDP"}]}])],
                        lambda r: r.all_ingress("x/a", False), 81), id="udp-is-not-tcp"),
    pytest.param(*_case("x/a x/b y/a z/a", [policy("not-y", A, egress=[{"to": [{"namespaceSelector": {
        "matchExpressions": [{"key": model.NAMESPACE_NAME, "operator": "NotIn", "values": ["y"]}]}}]}])],
        lambda r: r.peer(pod("x/a"), ns("y"), False)), id="egress-namespace-not-in"),
    pytest.param(*_case("x/a x/b y/a", [policy("egress-a", A, egress=[{}]), policy("deny-a", A, ingress=[])],
                        lambda r: r.all_ingress("x/a", False)), id="ingress-and-egress-independent"),
]


@pytest.mark.parametrize(("pods", "policies", "build", "port", "protocol"), CASES)
def test_upstream_truth_table(pods, policies, build, port, protocol):
    reach = Reach(pods)
    build(reach)
    assert_matrix(policies, reach, port, protocol)


def test_egress_to_a_cidr_block():
    block = policy("cidr", A, egress=[{"to": [{"ipBlock": {"cidr": IPS["y/b"] + "/32"}}]}])
    reach = Reach(["x/a", "y/a", "y/b"]).all_egress("x/a", False).expect("x/a", "y/b", True)
    assert_matrix([block], reach)


def test_except_clause_and_an_overlapping_allow():
    except_b = policy("cidr", A, egress=[{"to": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": [IPS["x/b"] + "/32"]}}]}])
    assert_matrix([except_b], Reach(["x/a", "x/b", "x/c"]).expect("x/a", "x/b", False))
    only_b = policy("cidr", A, egress=[{"to": [{"ipBlock": {"cidr": IPS["x/b"] + "/32"}}]}])
    assert_matrix([only_b], Reach(["x/a", "x/b", "x/c"]).all_egress("x/a", False).expect("x/a", "x/b", True))
    # both policies: the union (an IP both in an except and in another block is allowed)
    assert model.check([except_b, only_b], NS_LABELS, ALL["x/a"], ALL["x/b"], 80).allowed


def test_end_port_range():
    ranged = policy("range", A, ingress=[{"ports": [{"port": 80, "endPort": 82, "protocol": "TCP"}]}])
    for port, allowed in ((79, False), (80, True), (81, True), (82, True), (83, False)):
        assert model.check([ranged], NS_LABELS, ALL["y/a"], ALL["x/a"], port).allowed is allowed, port


def test_a_named_port_resolves_per_destination_pod():
    web = model.Pod("x", "web", {"pod": "web"}, ("10.244.0.9",), (("http", 8080, "TCP"),))
    other = model.Pod("x", "other", {"pod": "web"}, ("10.244.0.10",), (("http", 9090, "TCP"),))
    named = policy("http", {"pod": "web"}, ingress=[{"ports": [{"port": "http"}]}])
    assert model.check([named], NS_LABELS, ALL["y/a"], web, 8080).allowed
    assert not model.check([named], NS_LABELS, ALL["y/a"], web, 9090).allowed
    assert model.check([named], NS_LABELS, ALL["y/a"], other, 9090).allowed
    assert not model.check([named], NS_LABELS, ALL["y/a"], other, 8080).allowed


def test_policy_types_default_and_outside_addresses():
    # no policyTypes and only egress rules: both directions (the API server's default)
    both = {"metadata": {"namespace": "x", "name": "p"}, "spec": {"podSelector": {}, "egress": [{}]}}
    assert model.policy_types(both) == ["Ingress", "Egress"]
    assert not model.check([both], NS_LABELS, ALL["y/a"], ALL["x/a"], 80).allowed
    # an address that is no pod: selectors never match it, ipBlocks do; nothing isolates it
    by_selector = policy("sel", ingress=[{"from": [{"namespaceSelector": {}}]}])
    by_block = policy("blk", ingress=[{"from": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]}])
    assert not model.check([by_selector], NS_LABELS, "192.168.1.1", ALL["x/a"], 80).allowed
    assert model.check([by_block], NS_LABELS, "192.168.1.1", ALL["x/a"], 80).allowed
    assert model.check([by_selector], NS_LABELS, ALL["x/a"], "192.168.1.1", 80).allowed


def test_the_verdict_names_the_deciding_policies():
    deny = policy("deny", ingress=[])
    allow = policy("allow-y", A, ingress=[{"from": [{"namespaceSelector": NS_Y}]}])
    egress = policy("egress-80", ns="y", egress=[{"ports": [{"port": 80}]}])
    v = model.check([deny, allow, egress], NS_LABELS, ALL["y/a"], ALL["x/a"], 80)
    assert v.allowed
    assert v.ingress.selecting == ["x/deny", "x/allow-y"] and v.ingress.allowing == ["x/allow-y"]
    assert v.egress.selecting == ["y/egress-80"] and v.egress.allowing == ["y/egress-80"]
    v = model.check([deny, allow, egress], NS_LABELS, ALL["z/a"], ALL["x/b"], 80)
    assert not v.allowed and v.ingress.allowing == [] and not v.egress.isolated
