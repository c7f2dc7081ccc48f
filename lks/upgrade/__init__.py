"""Upgrades of managed clusters, as AKS runs them: one module per concern (surge node-pool
upgrades, served APIs and the deprecated-API gate, auto-upgrade schedules, what-if, rollback).

The management plane (`lks.arm`) stores the desired versions and starts the operation; these
modules decide what an upgrade may do and carry out its node-pool part.
"""
