"""The documents that lead a client to the token issuer, all public as Azure's are:

- the cloud's metadata (`GET /metadata/endpoints`, what `az cloud register` reads): the ARM
  endpoint, the login endpoint (`…/adfs`, so MSAL skips its online instance discovery), the
  token audience az asks for (`authentication.audiences[0]`), the Graph endpoint;
- OpenID Connect discovery (Entra's `/{tenant}/v2.0/.well-known/openid-configuration` and the
  ADFS form under the login endpoint): issuer, token endpoint (its first path segment is the
  tenant, which MSAL reads from it), JWKS URI;
- the JWKS: the issuer's public key, by `kid`.

`lks.identity.issuer` answers the token endpoint named here; `lks.identity.routes` serves both.
"""

from __future__ import annotations

from typing import Any

from lks.identity.issuer import ARM_AUDIENCE, Issuer
from lks.kube.serviceaccounts.keys import ALGORITHM

Doc = dict[str, Any]

CLOUD_NAME = "lks"


def cloud_metadata(issuer: Issuer, api_version: str) -> Doc | list[Doc]:
    """ARM's cloud metadata: one cloud's document from api-version 2022-09-01 on, a list of
    clouds before it, as management.azure.com answers."""
    endpoint = issuer.endpoint
    graph = issuer.graph_audience
    doc = {
        "portal": endpoint,
        "authentication": {"loginEndpoint": issuer.login_endpoint, "audiences": [ARM_AUDIENCE, endpoint + "/"],
                           "tenant": issuer.tenant_id, "identityProvider": "AAD"},
        "graphAudience": graph, "graph": graph, "name": CLOUD_NAME, "suffixes": {},
        "resourceManager": endpoint + "/", "microsoftGraphResourceId": graph,
    }
    return doc if api_version >= "2022-09-01" else [doc]


def openid_configuration(issuer: Issuer, tenant: str) -> Doc:
    """Entra's v2.0 discovery document for `tenant` (as the client named it: the tenant id, or
    an alias such as `organizations`, which the endpoints keep)."""
    base = f"{issuer.endpoint}/{tenant}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer.issuer_url,
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "appid", "idtyp"],
        "grant_types_supported": ["client_credentials"],
        "tenant_region_scope": None,
        "cloud_instance_name": CLOUD_NAME,
        "msgraph_host": issuer.graph_audience.split("://", 1)[-1].rstrip("/"),
    }


def adfs_configuration(issuer: Issuer) -> Doc:
    """The discovery document under the login endpoint (`…/adfs/.well-known/…`), where MSAL
    looks for an ADFS authority: the tenant's own, so its token endpoint names the tenant id."""
    return openid_configuration(issuer, issuer.tenant_id)


def jwks(issuer: Issuer) -> Doc:
    return {"keys": [{**issuer.tokens.key.jwk, "issuer": issuer.issuer_url}]}
