"""ACI's checks, defaults and rounding of a container group's PUT (`lks.aci.model`)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lks.aci import model
from lks.arm.errors import ARMError


def body(**props: Any) -> dict[str, Any]:
    c = {"name": "web", "properties": {"image": "nginx", "command": ["sleep", "1"],
                                       "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}}}}
    return {"location": "West Europe", "properties": {"containers": [c], **props}}


def refused(b: dict[str, Any], name: str = "g1") -> ARMError:
    with pytest.raises(ARMError) as err:
        model.admit(b, name=name)
    return err.value


def test_defaults_and_rounding() -> None:
    b = body()
    b["properties"]["containers"][0]["properties"]["resources"] = {"requests": {"cpu": 0.333, "memoryInGB": 0.77}}
    doc = model.admit(b, name="g1")
    props = doc["properties"]
    assert doc["location"] == "westeurope"
    assert (props["restartPolicy"], props["osType"], props["sku"]) == ("Always", "Linux", "Standard")
    assert props["containers"][0]["properties"]["resources"]["requests"] == {"cpu": 0.33, "memoryInGB": 0.8}
    del props["containers"][0]["properties"]["resources"]
    doc = model.admit(doc, name="g1")  # no resources: ACI's (and the virtual kubelet's) 1 core, 1.5 GB
    assert model.requests(doc) == (1.0, 1.5)


def test_secure_values_and_secrets_never_shown() -> None:
    b = body(volumes=[{"name": "s", "secret": {"key": "c2VjcmV0"}}])
    c = b["properties"]["containers"][0]["properties"]
    c["environmentVariables"] = [{"name": "A", "value": "1"}, {"name": "B", "secureValue": "hidden"}]
    c["volumeMounts"] = [{"name": "s", "mountPath": "/mnt/s"}]
    doc = model.admit(b, name="g1")
    shown = model.shown(doc)
    assert shown["properties"]["containers"][0]["properties"]["environmentVariables"] == [
        {"name": "A", "value": "1"}, {"name": "B"}]
    assert shown["properties"]["volumes"] == [{"name": "s", "secret": {}}]
    assert doc["properties"]["containers"][0]["properties"]["environmentVariables"][1]["secureValue"] == "hidden"


@pytest.mark.parametrize("name", ["Upper", "a--", "-a", "a_b", "x" * 64])
def test_group_names_aci_refuses(name: str) -> None:
    err = refused(body(), name)
    assert err.code == "InvalidContainerGroupName" and f"'{name}'" in err.message


def test_resources_over_the_regions_limit() -> None:
    b = body()
    b["properties"]["containers"].append(copy.deepcopy(b["properties"]["containers"][0]))
    b["properties"]["containers"][1]["name"] = "two"
    b["properties"]["containers"][1]["properties"]["resources"]["requests"]["cpu"] = 3.5
    err = refused(b)
    assert (err.code, err.status) == ("ServiceUnavailable", 409)
    assert err.message.endswith("Resource requested: '4.5' CPU '3' GB memory 'Linux' OS")


@pytest.mark.parametrize("limits, code", [
    pytest.param({"cpu": 0.5}, "ResourceLimitsLessThanRequests", id="below-request"),
    pytest.param({"memoryInGB": 3}, "ContainerLimitGreaterThanContainerGroupTotalRequest", id="over-total"),
])
def test_limits(limits: dict[str, float], code: str) -> None:
    b = body()
    b["properties"]["containers"][0]["properties"]["resources"]["limits"] = limits
    assert refused(b).code == code


@pytest.mark.parametrize("volume, code", [
    pytest.param({"name": "v", "gitRepo": {"repository": "https://x/y"}}, "UnsupportedVolumeType", id="gitRepo"),
    pytest.param({"name": "v", "azureFile": {"shareName": "s"}}, "UnsupportedVolumeType", id="azureFile"),
    pytest.param({"name": "v"}, "UnsupportedVolumeType", id="none"),
])
def test_volumes(volume: dict[str, Any], code: str) -> None:
    err = refused(body(volumes=[volume]))
    assert err.code == code and "'v'" in err.message


def test_ip_address_rules() -> None:
    ports = {"ports": [{"port": 80}]}
    b = body(ipAddress={"type": "Public", **ports, "dnsNameLabel": "ok-label"})
    assert refused(b).code == "InvalidIpAddressPorts"  # no container exposes 80
    b["properties"]["containers"][0]["properties"]["ports"] = [{"port": 80}]
    assert model.admit(b, name="g1")["properties"]["ipAddress"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    b["properties"]["ipAddress"]["dnsNameLabel"] = "1bad"
    assert refused(b).code == "InvalidDnsNameLabel"
    b["properties"]["ipAddress"] = {"type": "Private", **ports}
    assert refused(b).code == "PrivateIPAddressNotSupported"


def test_restart_policy_and_container_names() -> None:
    assert refused(body(restartPolicy="Sometimes")).code == "InvalidRestartPolicy"
    b = body()
    b["properties"]["containers"][0]["name"] = "Web"
    err = refused(b)
    assert err.code == "InvalidContainerName"
    assert err.message.startswith("The container name 'Web' in container group 'g1' is invalid.")


@pytest.mark.parametrize("change", [
    pytest.param(lambda b: b["properties"].update(containers="x"), id="containers-string"),
    pytest.param(lambda b: b["properties"]["containers"].append(7), id="container-number"),
    pytest.param(lambda b: b["properties"]["containers"][0]["properties"].update(command="sleep 1"), id="command-str"),
    pytest.param(lambda b: b["properties"]["containers"][0]["properties"].update(command=[1]), id="command-int"),
    pytest.param(lambda b: b["properties"]["containers"][0]["properties"].update(resources=[]), id="resources"),
    pytest.param(lambda b: b["properties"]["containers"][0]["properties"].update(ports=[{"port": "80"}]),
                 id="port-string"),
    pytest.param(lambda b: b["properties"]["containers"][0]["properties"].update(ports=[{}]), id="port-missing"),
    pytest.param(lambda b: b["properties"]["containers"][0]["properties"].update(
        environmentVariables=[{"name": "A", "value": 1}]), id="env-value"),
    pytest.param(lambda b: b["properties"].update(volumes=[{"name": "v", "secret": {"k": 1}}]), id="secret-value"),
    pytest.param(lambda b: b["properties"].update(ipAddress="Public"), id="ip-string"),
    pytest.param(lambda b: b.update(tags=[]), id="tags"),
])
def test_hostile_bodies_are_400s(change: Any) -> None:
    b = body()
    change(b)
    err = refused(b)
    assert err.status == 400 and err.code in ("InvalidRequestContent", "InvalidContainerPort")
