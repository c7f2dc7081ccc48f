"""What the hosted clusters of an Entra-integrated managed cluster ask the tenant
(`lks.kube.entra.Directory`): whether a bearer token is the issuer's access token for AKS's
Entra server app (kubelogin's and `lks get-token`'s audience), and whether a principal's role
assignments grant a Kubernetes data action at a scope (Azure RBAC for Kubernetes
authorization). `lks.server` gives one to `lks.controlplanes.ControlPlanes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lks.identity import rbac, tokens
from lks.identity.issuer import AKS_SERVER_APP, Issuer

AUDIENCES = (AKS_SERVER_APP, f"spn:{AKS_SERVER_APP}")  # kubelogin asks for `<server-id>/.default`


class Directory:
    def __init__(self, *, issuer: Issuer, assignments: rbac.RoleAssignments):
        self.issuer = issuer
        self.assignments = assignments

    def claims(self, token: str, tenant_id: str) -> Mapping[str, Any] | None:
        try:
            claims = self.issuer.tokens.verify(token, issuer=self.issuer.issuer_url, audiences=AUDIENCES)
        except (tokens.Invalid, tokens.Expired, tokens.NotYetValid, tokens.WrongAudience, tokens.WrongTenant):
            return None
        # kube-apiserver's OIDC/webhook authenticators allow no clock skew past `exp`
        if self.issuer.tokens.clock.now() > claims["exp"] or str(claims.get("tid", "")).lower() != tenant_id.lower():
            return None
        return claims

    def allows_data(self, object_id: str, groups: tuple[str, ...], action: str, scope: str) -> bool:
        access = rbac.Access(self.assignments, (object_id, *groups), object_id, object_id)
        return access.allows_data(action, scope)
