"""AKS's side of who reaches a cluster, through the Azure SDK, the `lks` CLI, kubectl and raw
HTTPS from a second loopback address: `disableLocalAccounts` (no static credentials from the
management API, and the ones handed out before stop working on the cluster endpoint) and
`apiServerAccessProfile.authorizedIPRanges` (a client outside the ranges is turned away; `""`
clears them)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import urllib3
import yaml
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import (
    ManagedCluster,
    ManagedClusterAgentPoolProfile,
    ManagedClusterAPIServerAccessProfile,
)
from azure.mgmt.resource.resources import ResourceManagementClient

from .conftest import LKS, lks_cli, lks_json

GROUP = "access-rg"
STATIC = "Getting static credential is not allowed because this cluster is set to disable local accounts."


class _Token:
    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LKS(tmp_path_factory.mktemp("access-home"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def aks(server):
    cfg = json.loads((server.home / "config.json").read_text())
    ResourceManagementClient(_Token(cfg["token"]), cfg["subscription_id"], base_url=cfg["endpoint"],
                             connection_verify=cfg["ca_file"]).resource_groups.create_or_update(
        GROUP, {"location": "westeurope"})
    return ContainerServiceClient(_Token(cfg["token"]), cfg["subscription_id"], base_url=cfg["endpoint"],
                                  connection_verify=cfg["ca_file"])


def _cluster(**props) -> ManagedCluster:
    return ManagedCluster(location="westeurope", agent_pool_profiles=[ManagedClusterAgentPoolProfile(
        name="nodepool1", count=1, vm_size="Standard_DS2_v2", mode="System", os_type="Linux")], **props)


def _kubeconfig(aks, name: str, tmp_path: Path, *, admin: bool) -> Path:
    get = aks.managed_clusters.list_cluster_admin_credentials if admin else \
        aks.managed_clusters.list_cluster_user_credentials
    path = tmp_path / f"{name}-{'admin' if admin else 'user'}.yaml"
    path.write_bytes(get(GROUP, name).kubeconfigs[0].value)
    return path


def _refused(call) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as err:
        call()
    assert err.value.status_code == 400
    assert (err.value.error.code, err.value.error.message) == ("BadRequest", STATIC)
    return err.value


def test_disabled_local_accounts_hand_out_no_static_credential_and_stop_the_old_ones(server, aks, tmp_path):
    mc = aks.managed_clusters.begin_create_or_update(GROUP, "local", _cluster()).result()
    assert mc.disable_local_accounts is False
    admin = _kubeconfig(aks, "local", tmp_path, admin=True)
    user = _kubeconfig(aks, "local", tmp_path, admin=False)
    for cfg in (admin, user):
        server.kubectl("get", "ns", "default", kubeconfig=cfg)

    # no Entra profile needed: AKS takes the flag without one (and then no credential works)
    mc.disable_local_accounts = True
    mc = aks.managed_clusters.begin_create_or_update(GROUP, "local", mc).result()
    assert mc.disable_local_accounts is True and mc.aad_profile is None
    _refused(lambda: aks.managed_clusters.list_cluster_admin_credentials(GROUP, "local"))
    _refused(lambda: aks.managed_clusters.list_cluster_user_credentials(GROUP, "local"))
    for cfg in (admin, user):  # the masterclient certificate and the clusterUser token
        res = server.kubectl("get", "ns", "default", kubeconfig=cfg, check=False)
        assert res.returncode != 0
        assert "error: You must be logged in to the server (Unauthorized)" in res.stderr
    res = lks_cli(server, "aks", "get-credentials", "-g", GROUP, "-n", "local", "--admin", "-f", "-")
    assert res.returncode == 1 and STATIC in res.stderr

    out = lks_json(server, "aks", "update", "-g", GROUP, "-n", "local", "--enable-local-accounts")
    assert out["disableLocalAccounts"] is False
    for cfg in (admin, user):
        server.kubectl("get", "ns", "default", kubeconfig=cfg)
    res = lks_cli(server, "aks", "update", "-g", GROUP, "-n", "local", "--enable-local-accounts",
                  "--disable-local-accounts")
    assert res.returncode == 1
    assert "Cannot specify --disable-local-accounts and --enable-local-accounts at the same time." in res.stderr


def test_cli_creates_a_cluster_without_local_accounts(server):
    out = lks_json(server, "aks", "create", "-g", GROUP, "-n", "nolocal", "-c", "1", "--disable-local-accounts")
    assert out["disableLocalAccounts"] is True
    res = lks_cli(server, "aks", "get-credentials", "-g", GROUP, "-n", "nolocal", "-f", "-")
    assert res.returncode == 1 and STATIC in res.stderr


def _pool(kubeconfig: Path, source: str) -> tuple[urllib3.PoolManager, str]:
    """A client with the kubeconfig's certificate whose connections leave from `source`."""
    cfg = yaml.safe_load(kubeconfig.read_text())
    d = kubeconfig.parent
    for key, name in (("certificate-authority-data", "ca.crt"),):
        (d / name).write_bytes(base64.b64decode(cfg["clusters"][0]["cluster"][key]))
    (d / "client.crt").write_bytes(base64.b64decode(cfg["users"][0]["user"]["client-certificate-data"]))
    (d / "client.key").write_bytes(base64.b64decode(cfg["users"][0]["user"]["client-key-data"]))
    pool = urllib3.PoolManager(ca_certs=str(d / "ca.crt"), cert_file=str(d / "client.crt"),
                               key_file=str(d / "client.key"), source_address=(source, 0), assert_hostname=False,
                               retries=False, timeout=10)
    return pool, cfg["clusters"][0]["cluster"]["server"]


def test_authorized_ip_ranges_turn_other_addresses_away(server, aks, tmp_path):
    mc = aks.managed_clusters.begin_create_or_update(GROUP, "door", _cluster(
        api_server_access_profile=ManagedClusterAPIServerAccessProfile(
            authorized_ip_ranges=["203.0.113.0/24", "198.51.100.7"]))).result()
    assert mc.api_server_access_profile.authorized_ip_ranges == ["203.0.113.0/24", "198.51.100.7/32"]
    admin = _kubeconfig(aks, "door", tmp_path, admin=True)
    pool, endpoint = _pool(admin, "127.0.0.2")

    res = pool.request("GET", endpoint + "/api/v1/namespaces/default")
    assert res.status == 403
    status = json.loads(res.data)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Forbidden", 403)
    assert "127.0.0.2" in status["message"]
    # the service's own address (and so kubectl on the service's host) still gets in, like AKS's nodes
    server.kubectl("get", "ns", "default", kubeconfig=admin)

    out = lks_json(server, "aks", "update", "-g", GROUP, "-n", "door",
                   "--api-server-authorized-ip-ranges", "203.0.113.0/24,127.0.0.2/32")
    assert out["apiServerAccessProfile"]["authorizedIpRanges"] == ["203.0.113.0/24", "127.0.0.2/32"]
    assert pool.request("GET", endpoint + "/api/v1/namespaces/default").status == 200

    lks_json(server, "aks", "update", "-g", GROUP, "-n", "door", "--api-server-authorized-ip-ranges", "10.9.0.0/16")
    assert pool.request("GET", endpoint + "/api/v1/namespaces/default").status == 403
    out = lks_json(server, "aks", "update", "-g", GROUP, "-n", "door", "--api-server-authorized-ip-ranges", "")
    assert not out["apiServerAccessProfile"].get("authorizedIpRanges")
    assert pool.request("GET", endpoint + "/api/v1/namespaces/default").status == 200


@pytest.mark.parametrize(("ranges", "message"), [
    ("10.0.0.1/8", "--api-server-authorized-ip-ranges should be a list of IPv4 addresses or CIDRs"),
    ("0.0.0.0/32,10.0.0.0/8", "Setting --api-server-authorized-ip-ranges to 0.0.0.0/32 is not allowed with other IP "
                              "ranges."),
    (",10.0.0.0/8", "--api-server-authorized-ip-ranges cannot be disabled and simultaneously enabled"),
    ("2001:db8::/32", "--api-server-authorized-ip-ranges cannot be IPv6 addresses"),
], ids=["host-bits", "nodes-only-and-more", "empty-and-more", "ipv6"])
def test_cli_checks_the_ranges_as_az(server, ranges, message):
    res = lks_cli(server, "aks", "update", "-g", GROUP, "-n", "door", "--api-server-authorized-ip-ranges", ranges)
    assert res.returncode == 1 and message in res.stderr


def test_the_management_api_checks_the_ranges(aks):
    for ranges, message in (
            (["10.0.0.1/8"], "'10.0.0.1/8' is not a valid IP address or CIDR range"),
            ([f"10.0.{i}.0/24" for i in range(201)],
             "The number of APIServer Authorized IP Ranges is greater than the allowed value 200.")):
        with pytest.raises(HttpResponseError) as err:
            aks.managed_clusters.begin_create_or_update(GROUP, "badranges", _cluster(
                api_server_access_profile=ManagedClusterAPIServerAccessProfile(authorized_ip_ranges=ranges))).result()
        assert err.value.status_code == 400 and err.value.error.code == "InvalidParameter"
        assert message in err.value.error.message


def test_the_policy_holds_across_a_restart(server, aks, tmp_path):
    """Recorded with the control plane, the policy is in force as soon as the restarted service
    answers (not only once the management plane has looked at its clusters again)."""
    door = _kubeconfig(aks, "door", tmp_path, admin=True)
    local = _kubeconfig(aks, "local", tmp_path, admin=True)
    lks_json(server, "aks", "update", "-g", GROUP, "-n", "door", "--api-server-authorized-ip-ranges", "10.9.0.0/16")
    lks_json(server, "aks", "update", "-g", GROUP, "-n", "local", "--disable-local-accounts")
    server.restart()
    pool, endpoint = _pool(door, "127.0.0.2")
    assert pool.request("GET", endpoint + "/api/v1/namespaces/default").status == 403
    res = server.kubectl("get", "ns", "default", kubeconfig=local, check=False)
    assert res.returncode != 0 and "(Unauthorized)" in res.stderr
    _refused(lambda: aks.managed_clusters.list_cluster_user_credentials(GROUP, "local"))
