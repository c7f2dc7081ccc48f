"""The service-account issuer's OIDC discovery documents, as kube-apiserver serves them
(`pkg/serviceaccount/openidmetadata.go`): `/.well-known/openid-configuration` names the issuer
and where its keys are, `/openid/v1/jwks` lists the public keys by `kid`, so that a relying
party (Azure workload identity, Vault, another cluster) verifies the cluster's tokens itself.

They are readable by service accounts (the bootstrap `system:service-account-issuer-discovery`
role) and, once the managed cluster has an OIDC issuer (`oidcIssuerProfile.enabled`, which
`lks.controlplanes` gives the issuer), by anyone, as AKS serves its issuer publicly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from lks.kube.serviceaccounts.keys import ALGORITHM

if TYPE_CHECKING:
    from lks.kube.serviceaccounts.issuer import Issuer

CONFIGURATION = "/.well-known/openid-configuration"
JWKS = "/openid/v1/jwks"
PATHS = (CONFIGURATION, JWKS)
CACHE_CONTROL = "public, max-age=3600"  # upstream's


def serve(issuer: Issuer, path: str, *, cluster_url: str) -> tuple[bytes, str]:
    """(body, content type) of one of `PATHS`; `cluster_url` is where the API server is reached
    (the JWKS lives there unless the issuer is a public one that serves it itself)."""
    if path == JWKS:
        return orjson.dumps({"keys": [issuer.key.jwk]}), "application/jwk-set+json"
    base = issuer.issuer.rstrip("/") if issuer.public else cluster_url.rstrip("/")
    return orjson.dumps({
        "issuer": issuer.issuer, "jwks_uri": base + JWKS, "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": [ALGORITHM],
    }), "application/json"
