"""Deletion as upstream's generic registry does it: preconditions, graceful deletion, finalizers
and the garbage collector's propagation policies.

An object without finalizers and without a grace period is removed at once. Otherwise it gets
`deletionTimestamp` and `deletionGracePeriodSeconds` and stays until its finalizers are gone
(an update that removes the last one removes the object, see `ready_to_remove`) and, for pods,
until the kubelet confirms with a zero grace period. `propagationPolicy` adds the garbage
collector's finalizers: `orphan` (Orphan) or `foregroundDeletion` (Foreground); Background
leaves dependents to the collector (`lks.controllers.garbagecollector`) once the owner is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lks import store
from lks.clock import rfc3339
from lks.kube import admission, errors, gojson, queryparams, structural
from lks.kube.schema import Schema

if TYPE_CHECKING:
    from lks.kube.authn import User
    from lks.kube.registry import Registry

Obj = dict[str, Any]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
_POLICIES = ("Orphan", "Background", "Foreground")


@dataclass(slots=True)
class DeleteOptions:
    propagation_policy: str | None = None
    grace_period_seconds: int | None = None
    preconditions: Obj | None = None
    dry_run: bool = False
    orphan_dependents: bool | None = None  # as sent: `false` on a pending deletion answers 202
    user: User | None = None  # who asks (None: the service itself), for admission
    warnings: list[str] = field(default_factory=list)  # admission's; sent as Warning headers

    def sent(self, grace: int | None) -> Obj:
        """The meta.k8s.io/v1 DeleteOptions as admission sees them (`request.options`): what was
        asked, with `grace` (a graceful strategy's period, as CheckGracefulDelete sets it)."""
        out: Obj = {}
        if grace is not None or self.grace_period_seconds is not None:
            out["gracePeriodSeconds"] = grace if grace is not None else self.grace_period_seconds
        if self.preconditions is not None:
            out["preconditions"] = self.preconditions
        if self.orphan_dependents is not None:  # sent instead of a policy (never both)
            out["orphanDependents"] = self.orphan_dependents
        elif self.propagation_policy is not None:
            out["propagationPolicy"] = self.propagation_policy
        if self.dry_run:
            out["dryRun"] = ["All"]
        return out

    @classmethod
    def from_request(cls, body: Any, query: Any, *, schemas: dict) -> DeleteOptions:
        """What a DELETE (of one object or a collection) asks. Upstream reads a non-empty body
        as the whole `DeleteOptions` and then never looks at the query; only a request without
        a body takes them from the query parameters. `body` is the decoded body (None: none)."""
        if body is None:
            return cls.parse(None, query)
        _check_body(body, schemas)
        return cls.parse(body, {})

    @classmethod
    def parse(cls, body: Any, query: Any, *, dry_run: bool = False) -> DeleteOptions:
        """From a decoded `DeleteOptions` body, else (`body` None) from the query; validated as
        `ValidateDeleteOptions` does. `dry_run` adds a dry run the caller found elsewhere."""
        if body is not None:
            if not isinstance(body, dict):
                raise errors.bad_request("DeleteOptions must be a JSON object")
            policy, orphan = body.get("propagationPolicy"), body.get("orphanDependents")
            grace, pre, dry = body.get("gracePeriodSeconds"), body.get("preconditions"), body.get("dryRun")
        else:
            policy, pre = queryparams.first(query, "propagationPolicy"), None
            orphan = queryparams.boolean(query, "orphanDependents")
            grace = queryparams.int64(query, "gracePeriodSeconds")
            dry = queryparams.values(query, "dryRun")
        causes: list[errors.Cause] = []
        if policy is not None and orphan is not None:
            causes.append(errors.Cause.invalid("propagationPolicy", policy,
                                               "orphanDependents and deletionPropagation cannot be both set"))
        if policy is not None and policy not in _POLICIES:
            causes.append(errors.Cause.not_supported("propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"]))
        dry = [dry] if isinstance(dry, str) else list(dry or [])
        causes += queryparams.dry_run_causes(dry)
        if pre is not None and not isinstance(pre, dict):
            causes.append(errors.Cause.type_invalid("preconditions", pre, "must be of type object"))
        if causes:
            raise errors.invalid("DeleteOptions", "meta.k8s.io", "", causes)
        if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int)):
            raise errors.bad_request(f'invalid value for gracePeriodSeconds: "{grace}"')
        if policy is None and orphan is not None:
            policy = "Orphan" if orphan else "Background"
        return cls(policy, grace, pre, dry_run or bool(dry), orphan)


_SCHEMA = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
# the scheme upstream decodes DeleteOptions bodies with; its name is where it was made
_SCHEME = "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme/register.go:28"


def _check_body(body: Any, schemas: dict) -> None:
    """A DELETE body decodes as DeleteOptions (of any version: upstream registers it
    unversioned) or is refused with 400, as kube-apiserver 1.35 and later do."""
    error = gojson.find_kind_error(body)
    if error is not None:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {error}")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind and kind != "DeleteOptions":
        raise errors.bad_request(
            f'no kind "{kind}" is registered for version "{api_version or "meta.k8s.io/v1"}" in scheme "{_SCHEME}"')
    _, type_errors = structural.check(body, Schema.of(schemas, _SCHEMA))
    if type_errors:
        raise errors.bad_request(type_errors[0])


def check_preconditions(reg: Registry, current: Obj, pre: Obj | None) -> None:
    """rest.BeforeDelete's early check: a conflict on the kind (not the resource), as upstream."""
    if not pre:
        return
    meta = current["metadata"]
    uid, rv = pre.get("uid"), pre.get("resourceVersion")
    if uid is not None and uid != meta.get("uid"):
        raise errors.conflict(reg.rt.kind, reg.rt.group, meta["name"],
                              f"the UID in the precondition ({uid}) does not match the UID in record "
                              f"({meta.get('uid')}). The object might have been deleted and then recreated")
    if rv is not None and rv != meta.get("resourceVersion"):
        raise errors.conflict(reg.rt.kind, reg.rt.group, meta["name"],
                              f"the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion "
                              f"in record ({meta.get('resourceVersion')}). The object might have been modified")


def _finalizers_for(current: list[str], policy: str | None, default_policy: str) -> list[str]:
    """The finalizers a delete leaves on the object, with the collector's per the policy."""
    policy = policy or (None if ORPHAN in current or FOREGROUND in current else default_policy)
    out = [f for f in current if f not in (ORPHAN, FOREGROUND)] if policy else list(current)
    if policy == "Orphan":
        out.append(ORPHAN)
    elif policy == "Foreground":
        out.append(FOREGROUND)
    return out


async def delete(reg: Registry, namespace: str | None, name: str, opts: DeleteOptions) -> tuple[Obj, bool]:
    """Delete or start deleting; returns (answer, removed)."""
    from lks.kube.registry import WriteOptions  # the registry imports this module

    for _ in range(16):
        kv = await reg.store.get(reg.key(namespace, name))
        if kv is None:
            raise errors.not_found(reg.rt.resource, reg.rt.group, name)
        current = reg.decode(kv)
        check_preconditions(reg, current, opts.preconditions)
        meta = current["metadata"]
        grace = reg.strategy.grace_period(current, opts.grace_period_seconds)
        sent = opts.sent(grace if "deletionTimestamp" not in meta else None)
        await admission.validate(reg.cluster, "DELETE", reg, None, current,
                                 WriteOptions(dry_run=opts.dry_run, user=opts.user, trusted=True, warnings=opts.warnings,
                                              sent=sent))
        await reg.strategy.before_delete(reg.cluster, current)
        finalizers = _finalizers_for(meta.get("finalizers") or [], opts.propagation_policy,
                                     reg.strategy.default_propagation)
        pending = bool(finalizers) or bool(grace) or reg.strategy.deletion_needs_finalize(current)
        if not pending:
            if opts.dry_run:
                return reg.deleted_answer(current), True
            try:
                rev, _ = await reg.store.delete(kv.key, mod_revision=kv.mod_revision)
            except (store.RevisionConflict, store.NotFound):
                continue
            meta["resourceVersion"] = str(rev)
            await admission.released(reg.cluster, reg, current)
            return reg.deleted_answer(current), True
        updated = _mark_deleting(reg, current, finalizers, grace)
        if updated == current and "deletionTimestamp" in meta:
            return reg.served(current), False  # already being deleted: nothing changes
        if opts.dry_run:
            return reg.served(updated), False
        try:
            rev = await reg.store.update(kv.key, reg.encode(updated), mod_revision=kv.mod_revision)
        except (store.RevisionConflict, store.NotFound):
            continue
        updated["metadata"]["resourceVersion"] = str(rev)
        return reg.served(updated), False
    raise errors.conflict(reg.rt.resource, reg.rt.group, name, errors.MODIFIED)


def _mark_deleting(reg: Registry, current: Obj, finalizers: list[str], grace: int | None) -> Obj:
    obj = {**current, "metadata": dict(current["metadata"])}
    meta = obj["metadata"]
    now = reg.cluster.clock.now()
    old_grace = meta.get("deletionGracePeriodSeconds")
    if "deletionTimestamp" not in meta or (grace is not None and old_grace is not None and grace < old_grace):
        # a second delete may only shorten a grace period, never lengthen it
        meta["deletionTimestamp"] = rfc3339(now + (grace or 0))
        meta["deletionGracePeriodSeconds"] = grace or 0
    if finalizers:
        meta["finalizers"] = finalizers
    else:
        meta.pop("finalizers", None)
    reg.strategy.prepare_for_delete(obj)
    return obj


def ready_to_remove(obj: Obj) -> bool:
    """After an update: a deleting object whose finalizers and grace period are done goes."""
    meta = obj["metadata"]
    return ("deletionTimestamp" in meta and not meta.get("finalizers")
            and not meta.get("deletionGracePeriodSeconds"))


def check_finalizer_update(obj: Obj, old: Obj) -> list[errors.Cause]:
    """No finalizer may be added once deletion has started (upstream's ValidateObjectMetaUpdate)."""
    old_meta = old["metadata"]
    if "deletionTimestamp" not in old_meta:
        return []
    added = [f for f in obj["metadata"].get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])]
    if not added:
        return []
    listed = ", ".join(f'"{f}"' for f in added)
    return [errors.Cause.forbidden(
        "metadata.finalizers",
        f"no new finalizers can be added if the object is being deleted, found new finalizers []string{{{listed}}}")]
