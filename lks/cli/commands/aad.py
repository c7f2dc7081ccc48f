"""The Microsoft Entra flags of `lks aks create` and `lks aks update`, as az's: `--enable-aad`,
`--aad-admin-group-object-ids`, `--aad-tenant-id`, `--enable-azure-rbac` (and on update
`--disable-azure-rbac`), turned into the cluster's `aadProfile` (checked by the service,
`lks.arm.aad`), with az's own usage errors.
"""

from __future__ import annotations

import argparse
from typing import Any

from lks.cli import output

FLAGS = ("--enable-aad", "--aad-admin-group-object-ids", "--aad-tenant-id", "--enable-azure-rbac",
         "--disable-azure-rbac")


def add_arguments(p: argparse.ArgumentParser, *, update: bool) -> None:
    p.add_argument("--enable-aad", action="store_true", help="Enable managed AAD feature for cluster.")
    p.add_argument("--aad-admin-group-object-ids", help="Comma-separated list of aad group object IDs that will be "
                   "set as cluster admin.")
    p.add_argument("--aad-tenant-id", help="The ID of an Azure Active Directory tenant.")
    p.add_argument("--enable-azure-rbac", action="store_true",
                   help="Enable Azure RBAC to control authorization checks on cluster.")
    if update:
        p.add_argument("--disable-azure-rbac", action="store_true",
                       help="Disable Azure RBAC to control authorization checks on cluster.")


def given(args: argparse.Namespace) -> bool:
    return bool(args.enable_aad or args.aad_admin_group_object_ids is not None or args.aad_tenant_id
                or args.enable_azure_rbac or getattr(args, "disable_azure_rbac", False))


def apply(args: argparse.Namespace, props: dict[str, Any], *, update: bool) -> None:
    """Set `props["aadProfile"]` from the flags (az's checks first)."""
    if not given(args):
        return
    current = props.get("aadProfile") or {}
    managed = bool(current.get("managed"))
    if update:
        if args.enable_aad and managed:
            raise output.CLIError('Cannot specify "--enable-aad" if managed AAD is already enabled')
        if not args.enable_aad and not managed:
            raise output.CLIError('Cannot specify "--aad-tenant-id/--aad-admin-group-object-ids/--enable-azure-rbac/'
                                  '--disable-azure-rbac" if managed AAD is not enabled')
        if args.enable_azure_rbac and args.disable_azure_rbac:
            raise output.CLIError('Cannot specify "--enable-azure-rbac" and "--disable-azure-rbac" at the same time')
    elif not args.enable_aad:
        # az's words (its flag's old name); a lone --aad-tenant-id makes no profile
        if args.aad_admin_group_object_ids is not None:
            raise output.CLIError('"--admin-aad-object-id" can only be used together with "--enable-aad"')
        if args.enable_azure_rbac:
            raise output.CLIError('"--enable-azure-rbac" can only be used together with "--enable-aad"')
        return
    profile = {**current, "managed": True}
    if args.aad_admin_group_object_ids is not None:
        profile["adminGroupObjectIDs"] = [g.strip() for g in args.aad_admin_group_object_ids.split(",") if g.strip()]
    if args.aad_tenant_id:
        profile["tenantID"] = args.aad_tenant_id
    if args.enable_azure_rbac:
        profile["enableAzureRBAC"] = True
    elif getattr(args, "disable_azure_rbac", False):
        profile["enableAzureRBAC"] = False
    props["aadProfile"] = profile
