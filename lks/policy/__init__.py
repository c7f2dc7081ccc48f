"""Policy across clusters: Gatekeeper in each cluster, Azure Policy over them.

`rego/` evaluates Gatekeeper ConstraintTemplates' Rego (rego-cpp through regopy, v0 templates
translated to v1 first); `gatekeeper/` runs the templates and constraints in a cluster (admission
and audit); `azure/` is Azure Policy in ARM, which assigns them across clusters.
"""
