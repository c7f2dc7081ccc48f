"""Identity for the management plane, as Microsoft Entra ID and Azure RBAC are for ARM: the
service's tenant, its principals (service principals, the bootstrap owner), the token issuer that
`az login` talks to, and the role definitions and assignments every management request is
authorized against."""
