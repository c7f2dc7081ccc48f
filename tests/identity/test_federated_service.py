"""A federated credential trusting a hosted cluster's OIDC issuer, through the service's own
token endpoint: the cluster's service-account token is verified in process against the
cluster's key (as Entra would after fetching its JWKS), and the access token it buys
authenticates on ARM."""

from __future__ import annotations

import ssl

import aiohttp
import jwt

from lks.identity.issuer import JWT_BEARER
from lks.server import Service

SUBJECT = "system:serviceaccount:default:wi"
ACCOUNT = {"metadata": {"name": "wi", "namespace": "default", "uid": "0e6f4a4e-55d7-4b7e-8c0a-3f6f3c0b1f11"}}


async def test_workload_identity_token_exchange(tmp_path) -> None:
    svc = Service(home=tmp_path, port=0)
    await svc.start()
    try:
        assert svc.planes is not None and svc.identity is not None
        cluster = await svc.planes.create("wi", "1.36")
        unpublished = cluster.token_issuer.issue(ACCOUNT, audiences=["api://AzureADTokenExchange"], seconds=3600)
        issuer_url = f"{svc.endpoint}/clusters/{cluster.id}/"
        await svc.planes.set_issuer(cluster.id, issuer_url)  # oidcIssuerProfile.enabled
        assertion = cluster.token_issuer.issue(ACCOUNT, audiences=["api://AzureADTokenExchange"], seconds=3600)
        sp = await svc.identity.principals.create("wi")
        await svc.identity.principals.add_federated(sp.app_id, name="kube", issuer=issuer_url, subject=SUBJECT)
        tenant = svc.config["tenant_id"]

        def form(token: str) -> dict[str, str]:
            return {"grant_type": "client_credentials", "client_id": sp.app_id, "client_assertion": token,
                    "client_assertion_type": JWT_BEARER, "scope": "https://management.lks//.default"}

        ctx = ssl.create_default_context(cafile=svc.config["ca_file"])
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
            async with http.post(f"{svc.endpoint}/{tenant}/oauth2/v2.0/token", data=form(assertion)) as r:
                body = await r.json()
                assert r.status == 200, body
            claims = jwt.decode(body["access_token"], options={"verify_signature": False})
            assert (claims["oid"], claims["appid"], claims["appidacr"]) == (sp.object_id, sp.app_id, "2")
            headers = {"Authorization": f"Bearer {body['access_token']}"}
            async with http.get(f"{svc.endpoint}/subscriptions?api-version=2022-12-01", headers=headers) as r:
                assert r.status == 200, await r.text()
            # the cluster's in-cluster issuer is no issuer anyone outside can verify
            async with http.post(f"{svc.endpoint}/{tenant}/oauth2/v2.0/token", data=form(unpublished)) as r:
                body = await r.json()
                assert (r.status, body["error"], body["error_codes"]) == (401, "invalid_client", [700211])
            # a token of that issuer signed by another key
            other = await svc.planes.create("other", "1.36")
            forged = jwt.encode({**jwt.decode(assertion, options={"verify_signature": False})},
                                other.token_issuer.key.private, algorithm="RS256")
            async with http.post(f"{svc.endpoint}/{tenant}/oauth2/v2.0/token", data=form(forged)) as r:
                body = await r.json()
                assert (r.status, body["error_codes"]) == (401, [50013])
    finally:
        await svc.stop()
