"""Azure Policy over the clusters: the built-in Kubernetes catalog (`catalog`, with lks's own
ConstraintTemplates under `templates/`), assignments and custom definitions (`assignments`), their
parameters (`parameters`) and the compliance states clusters report (`states`). `lks.arm.policy`
serves them on the management API; the add-on's sync (`addon`) installs
`constraints.desired(await PolicyStore.applying_to(cluster_id))` in each cluster's Gatekeeper
(`lks.policy.gatekeeper`) and reports its audits with `ComplianceStates.report_constraint`.
"""
