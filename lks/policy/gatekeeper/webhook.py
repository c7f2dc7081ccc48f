"""Gatekeeper's validating webhook (`validation.gatekeeper.sh`, `pkg/webhook/policy.go`),
answered in process: the API server's webhook client hands the AdmissionReview to `Webhook.admit`
(`lks.kube.webhooks.local`) instead of dialing the `gatekeeper-webhook-service` pods.

Every constraint whose match selects the request's object is evaluated with its template's
program; each result is `[constraint-name] message`. `deny` results refuse the request (403
Forbidden, the messages joined by newlines: the API server prefixes `admission webhook
"validation.gatekeeper.sh" denied the request: `), `warn` results come back as warnings
(kubectl's `Warning:` lines), `dryrun` results only show in the audit. Namespaces the Config
excludes for the webhook, and Gatekeeper's own (its `--exempt-namespace`), are let through.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from lks.policy.gatekeeper import constraints, evaluation, manifests
from lks.policy.gatekeeper.mutation import mutators

if TYPE_CHECKING:
    from lks.policy.gatekeeper.state import State

Obj = dict[str, Any]
log = logging.getLogger(__name__)
EXEMPT = (manifests.NAMESPACE,)


class Webhook:
    def __init__(self, state: State):
        self.state = state

    async def admit(self, body: bytes) -> tuple[int, bytes]:
        try:
            review = orjson.loads(body)
            request = review["request"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return 400, b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"bad request","code":400}'
        response = await self.respond(request)
        response["uid"] = request.get("uid") or ""
        return 200, orjson.dumps({"apiVersion": review.get("apiVersion") or "admission.k8s.io/v1",
                                  "kind": "AdmissionReview", "response": response})

    async def respond(self, request: Obj) -> Obj:
        """The AdmissionResponse (without uid) for an AdmissionRequest."""
        kind = request.get("kind") or {}
        obj = request.get("object") if request.get("operation") != "DELETE" else request.get("oldObject")
        meta = (obj or {}).get("metadata") or {}
        group, kind_name = kind.get("group") or "", kind.get("kind") or ""
        if group.endswith(".gatekeeper.sh"):
            refused = _check_own(group, kind_name, request.get("name") or meta.get("name") or "", obj or {})
            if refused is not None:  # Gatekeeper's `admission.Errored`: a code and the error, no reason
                return {"allowed": False, "status": {"metadata": {}, "code": refused[0], "message": refused[1]}}
        namespace = request.get("namespace") or ""
        subject = meta.get("name") if group == "" and kind_name == "Namespace" else namespace
        if subject and (subject in EXEMPT or constraints.any_glob(await self.state.excluded("webhook"), subject)):
            return {"allowed": True, "status": {"metadata": {}, "code": 200,
                                                "message": "Namespace is set to be ignored by Gatekeeper config"}}
        bound = await self.state.constraints()
        deny: list[str] = []
        warn: list[str] = []
        if bound:
            target = constraints.Target(group, kind_name, namespace, request.get("name") or meta.get("name") or "",
                                        meta.get("labels") or {}, None)
            if namespace and any(b.constraint.namespace_selector is not None for b in bound):
                target.namespace_labels = await self._namespace_labels(namespace)
            matched = [b for b in bound if b.constraint.matches(target)]
            inventory = (await self.state.inventory() if await self.state.sync_only() else {}) if matched else {}
            shared: Obj = {}  # what the engines reuse across constraints for this review
            answers = evaluation.violations([(b.program, b.constraint.parameters) for b in matched], request,
                                            inventory, shared)
            for b, results in zip(matched, answers, strict=True):
                c = b.constraint
                if isinstance(results, Exception):  # a program that fails is Gatekeeper's error, not the API server's
                    log.warning("gatekeeper: constraint %s failed: %s", c.name, results)
                    continue
                for r in results:
                    text = f"[{c.name}] {r.get('msg', '')}"
                    if c.action == "deny":
                        deny.append(text)
                    elif c.action == "warn":
                        warn.append(text)
        if deny:
            return {"allowed": False, "status": {"metadata": {}, "status": "Failure", "reason": "Forbidden",
                                                 "code": 403, "message": "\n".join(deny)},
                    **({"warnings": warn} if warn else {})}
        return {"allowed": True, "status": {"metadata": {}, "code": 299 if warn else 200},
                **({"warnings": warn} if warn else {})}

    async def _namespace_labels(self, namespace: str) -> Obj:
        reg = self.state.cluster.registry("", "v1", "namespaces")
        ns = (await reg.cache()).objects.get(reg.key(None, namespace)) or {}
        return (ns.get("metadata") or {}).get("labels") or {}


_ACTIONS = ("deny", "dryrun", "warn", "scoped")


def _check_own(group: str, kind: str, name: str, obj: Obj) -> tuple[int, str] | None:
    """Gatekeeper's checks of its own resources (`validateGatekeeperResources`): (code, message)
    of a refusal, or None. 500 where Gatekeeper does not call the error the user's."""
    if group != "status.gatekeeper.sh" and len(name) > 63:
        return 500, f"resource cannot have metadata.name larger than 63 char; length: {len(name)}"
    spec = obj.get("spec") or {}
    if group == "templates.gatekeeper.sh" and kind == "ConstraintTemplate":
        for target in spec.get("targets") or []:
            ops = target.get("operations") or []
            if "*" in ops and len(ops) > 1:
                return 500, "if '*' is present, must not specify other operations"
        crd_kind = (((spec.get("crd") or {}).get("spec") or {}).get("names") or {}).get("kind") or ""
        if not crd_kind:
            return 422, f'invalid ConstraintTemplate: ConstraintTemplate "{name}" does not specify CRD Kind'
        if name.lower() != crd_kind.lower():
            return 422, (f"invalid ConstraintTemplate: the ConstraintTemplate's name \"{name}\" is not equal to the "
                         f'lowercase of CRD\'s Kind: "{crd_kind.lower()}"')
    if group == mutators.GROUP and kind in mutators.KINDS:
        try:
            mutators.build(obj)
        except mutators.InvalidMutator as err:  # the user's error (422), as Gatekeeper's validate<Kind>
            return 422, str(err)
    if group == "constraints.gatekeeper.sh":
        action = spec.get("enforcementAction")
        if action and action not in _ACTIONS:
            return 500, (f'unrecognized enforcementAction: "{action}" is not within the supported list '
                         f"[{' '.join(_ACTIONS)}]")
    return None
