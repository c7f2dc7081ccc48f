"""Container groups (Azure Container Instances) as a service of their own: `model` (ACI's checks,
defaults and shapes), `runtime` (each container's command as local processes, a network
namespace per group when root), `usage` (per-second billing), `groups` (documents, operations,
the runtime glue). `lks.arm.containergroups` serves them over ARM; `lks container` is the CLI.
"""
