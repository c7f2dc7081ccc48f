"""Who is calling the management API: the principal an access token (or the bootstrap token of
`config.json`) stands for. Authentication produces it; authorization and handlers read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    object_id: str  # the principal's object id (a token's `oid`); role assignments name it
    tenant_id: str
    kind: str  # "ServicePrincipal" | "User" (ARM's principalType)
    name: str  # what ARM's messages call the client: a service principal's appId, a user's UPN
    app_id: str | None = None  # service principals (a token's `appid`)
    groups: tuple[str, ...] = ()  # object ids of the groups the principal is in
    bootstrap: bool = False  # the static token of config.json: the service's first Owner
