"""MutatingAdmissionWebhook and ValidatingAdmissionWebhook: the cluster's webhook
configurations called over HTTPS on every write they match, as upstream's
`admission/plugin/webhook/{mutating,validating}` dispatchers do.

Registered last, so mutating webhooks see what the built-in plugins made of the object. They
run one at a time, configurations by name and webhooks in order, each on the previous one's
result; one with reinvocationPolicy IfNeeded runs once more when a later webhook changed the
object. A patched object is decoded, defaulted and validated again (a webhook cannot store an
invalid object). Validating webhooks run in parallel; deletes reach both kinds (a mutating
webhook may not patch a delete). The configurations themselves are never sent to a webhook.

Matching lives in `lks.kube.webhooks.hooks`, the review in `...review`, the calls in `...client`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING, Any

import orjson

from lks.kube import admission, audit, authn, authz, cel, conversion, errors, patch, scale
from lks.kube.webhooks import client, conditions, hooks, review, targets

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]
log = logging.getLogger(__name__)

_RESOURCES = {True: "mutatingwebhookconfigurations", False: "validatingwebhookconfigurations"}
_NO_SIDE_EFFECTS = ("None", "NoneOnDryRun")
_PATCH_PREFACE = "the server rejected our request due to an error in our request: "
_ANNOTATION = "webhook.admission.k8s.io/"
# what the server owns in an object's metadata: a webhook's patch of it is undone
_SERVER_META = ("uid", "creationTimestamp", "resourceVersion", "generation", "deletionTimestamp",
                "deletionGracePeriodSeconds", "managedFields")


@admission.plugin
class Webhooks:
    ORDER = 50  # after the built-in plugins (and the policies), as upstream's chain

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.client = client.Client()
        self._compiled: dict[str, tuple[str, list[hooks.Hook]]] = {}  # configuration key -> (rv, hooks)
        self._configs: dict[bool, Registry] = {}  # mutating -> the registry of its configurations

    async def admit(self, operation: str, reg: Registry, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
        if hooks.exempt(reg.rt):
            return
        mutating = await self._hooks(mutating=True)
        if not mutating:
            return
        req = await self._request(operation, reg, obj, old, opts, mutating)
        view = req.obj
        current = await self._mutate(req, mutating, opts)
        if current is view:
            return
        if req.scale is not None:  # the Scale the webhooks changed: its replicas go to the object
            current = scale.apply_scale(copy.deepcopy(obj), current, req.scale,
                                        (reg.rt.resource, reg.rt.group, req.name))
        before = obj
        meta = current["metadata"]
        for key in _SERVER_META:
            if key in before["metadata"]:
                meta[key] = before["metadata"][key]
            else:
                meta.pop(key, None)
        if (meta.get("namespace") or "") != (before["metadata"].get("namespace") or ""):
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the "
                                     "request")
        if old is not None and meta.get("name") != before["metadata"].get("name"):
            raise errors.invalid(reg.rt.kind, reg.rt.group, before["metadata"].get("name") or "",
                                 [errors.Cause.invalid("metadata.name", meta.get("name"), "field is immutable")])
        reg.validate_admitted(current, old, opts.subresource)
        obj.clear()
        obj.update(current)

    async def validate(self, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                       opts: WriteOptions, *, target: tuple[str, str] | None = None) -> None:
        if hooks.exempt(reg.rt):
            return
        if operation in ("DELETE", "CONNECT"):  # they have no mutating phase of their own here
            mutating = await self._hooks(mutating=True)
            if mutating:
                req = await self._request(operation, reg, obj, old, opts, mutating, target)
                await self._mutate(req, mutating, opts)
        validating = await self._hooks(mutating=False)
        if not validating:
            return
        req = await self._request(operation, reg, obj, old, opts, validating, target)
        invocations = [(i, inv) for i, h in enumerate(validating) if (inv := await self._matching(h, req)) is not None]
        if not invocations:
            return
        # in parallel, as upstream's goroutines; the first failure in webhook order answers
        results = await asyncio.gather(*(self._call(inv, req, opts, f"validating.{_ANNOTATION}round_0_index_{i}")
                                         for i, inv in invocations), return_exceptions=True)
        for (_, inv), result in zip(invocations, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            if result is not None and not result.allowed:
                raise review.denied(inv.hook.name, result.result)

    # -- configurations ----------------------------------------------------------------

    async def _hooks(self, *, mutating: bool) -> list[hooks.Hook]:
        """The webhooks of every configuration of this kind, configurations by name."""
        reg = self._configs.get(mutating)
        if reg is None:  # looked up once: every write comes here
            reg = self._configs[mutating] = self.cluster.registry(hooks.GROUP, "v1", _RESOURCES[mutating])
        objects = (await reg.cache()).objects
        if not objects:
            return []
        out: list[hooks.Hook] = []
        for key in sorted(objects):  # one prefix: key order is name order
            config = objects[key]
            rv = config["metadata"].get("resourceVersion") or ""
            memo = self._compiled.get(key)
            if memo is None or memo[0] != rv:
                memo = self._compiled[key] = (rv, hooks.compile(config, mutating=mutating))
            out.extend(memo[1])
        if len(self._compiled) > 2 * len(objects) + 64:  # configurations deleted: forget them
            live = set(objects)
            self._compiled = {k: v for k, v in self._compiled.items() if k in live or not k.startswith(reg.prefix)}
        return out

    async def connect(self, reg: Registry, namespace: str, name: str, options: Obj, opts: WriteOptions) -> None:
        """CONNECT: the connect options (PodExecOptions ...) are the object, as upstream sends them."""
        await self.validate("CONNECT", reg, options, None, opts, target=(namespace, name))

    async def _request(self, operation: str, reg: Registry, obj: Obj | None, old: Obj | None, opts: WriteOptions,
                       candidates: list[hooks.Hook], target: tuple[str, str] | None = None) -> hooks.Request:
        """`target`: (namespace, name) of a CONNECT, whose object (its options) names neither."""
        meta = (obj if obj is not None else old or {}).get("metadata") or {}
        name = meta.get("name") or ""
        namespace = name if reg.rt.group == "" and reg.rt.resource == "namespaces" else meta.get("namespace") or ""
        if target is not None:
            namespace, name = target
        options = admission.operation_options(operation, opts)
        paths = self.cluster.scale_paths(reg.rt) if opts.subresource == "scale" else None
        if paths is not None:  # upstream sends a write through `scale` as the Scale it is
            obj, old = (scale.to_scale(o, paths) if o is not None else None for o in (obj, old))
        user = opts.user or authn.ACTING.get()  # a controller's write: the controller's identity
        req = hooks.Request(operation, reg.rt, opts.subresource, namespace, name, obj, old, user,
                            opts.dry_run, options, scale=paths)
        if namespace and any(h.namespace_selector for h in candidates):
            namespaces = self.cluster.registry("", "v1", "namespaces")
            ns = (await namespaces.cache()).objects.get(namespaces.key(None, namespace)) or {}
            req.namespace_labels = (ns.get("metadata") or {}).get("labels") or {}
        return req

    async def _matching(self, hook: hooks.Hook, req: hooks.Request) -> hooks.Invocation | None:
        """The invocation of `hook` for `req`, its match conditions checked; None: not called."""
        inv = hooks.invocation(hook, req, self.cluster.catalog)
        if inv is None or not hook.match_conditions:
            return inv

        async def variables() -> Obj:
            rt = req.rt
            user = req.user or review.SERVICE_USER
            return {"object": _versioned(req.obj, inv), "oldObject": _versioned(req.old, inv),
                    "request": review.request(inv, req),
                    "authorizer": cel.Authorizer(
                        lambda check: authz.cel_check(self.cluster, user, check),
                        request_resource=cel.Check(group=rt.group, resource=rt.resource, subresource=req.subresource,
                                                   namespace=req.namespace, name=req.name))}

        matches, error = await conditions.match(hook.match_conditions, variables)
        if matches and error:  # no condition false, some failed: the failurePolicy decides
            if hook.fail_open:
                return None
            raise errors.forbidden(req.rt.resource, req.rt.group, req.name, error)
        return inv if matches else None

    # -- calls --------------------------------------------------------------------------

    async def _mutate(self, req: hooks.Request, mutating: list[hooks.Hook], opts: WriteOptions) -> Obj | None:
        """Call the matching mutating webhooks in order; the resulting object (`req.obj`
        itself when none changed it)."""
        invoked: list[tuple[int, hooks.Invocation, Obj | None]] = []  # IfNeeded webhooks and what they left
        for index, hook in enumerate(mutating):
            inv = await self._matching(hook, req)
            if inv is None:
                continue
            await self._mutate_one(inv, req, opts, f"round_0_index_{index}")
            if hook.reinvoke:
                invoked.append((index, inv, req.obj))
        for index, inv, left in invoked:
            if req.obj is not left and req.obj != left:  # a later webhook changed its result: once more
                await self._mutate_one(inv, req, opts, f"round_1_index_{index}")
        return req.obj

    async def _mutate_one(self, inv: hooks.Invocation, req: hooks.Request, opts: WriteOptions, where: str) -> None:
        before = req.obj
        try:
            answer = await self._call(inv, req, opts, f"mutation.{_ANNOTATION}{where}")
            if answer is not None:
                await self._apply(inv, req, answer)
        finally:  # upstream's audit annotation of every mutating call: did it change the object
            audit.annotate(f"mutation.{_ANNOTATION}{where}", orjson.dumps({
                "configuration": inv.hook.configuration, "webhook": inv.hook.name,
                "mutated": req.obj is not before}).decode())

    async def _apply(self, inv: hooks.Invocation, req: hooks.Request, answer: review.Answer) -> None:
        if not answer.allowed:
            raise review.denied(inv.hook.name, answer.result)
        if not answer.patch:
            return
        if req.obj is None:
            raise review.internal(f'admission webhook "{inv.hook.name}" attempted to modify the object, which is '
                                  "not supported for this operation")
        versioned = _versioned(req.obj, inv)
        try:
            patched = patch.json_patch(versioned, answer.patch)
            target = self.cluster.registry(inv.rt.group, inv.rt.version, inv.rt.resource)
            if isinstance(patched, dict):
                patched.setdefault("metadata", {})
            # a Scale is checked as it goes back to its object (scale.apply_scale)
            obj = patched if req.scale is not None else target.decode_admitted(patched)
        except errors.APIError as err:  # the JSON patch's own words, without a PATCH request's preface
            raise review.internal(err.message.removeprefix(_PATCH_PREFACE)) from None
        if obj != req.obj:
            req.obj = obj

    async def _call(self, inv: hooks.Invocation, req: hooks.Request, opts: WriteOptions,
                    annotation: str) -> review.Answer | None:
        """Call one webhook; its answer, or None when it failed open (failurePolicy Ignore,
        noted in the audit event as upstream: `failed-open.<annotation>` = the webhook)."""
        hook = inv.hook
        if req.dry_run and hook.side_effects not in _NO_SIDE_EFFECTS:
            raise review.dry_run_unsupported(hook.name)
        try:
            try:
                uid, body = review.build(inv, req, _versioned(req.obj, inv), _versioned(req.old, inv))
            except client.CallError as err:
                raise client.CallError(f"could not create admission objects: {err}") from None
            target = targets.of(self.cluster, hook.client_config, hook.timeout)
            try:
                status, data = await self.client.post(hook.uid, target, body, hook.timeout)
            except client.CallError as err:
                raise client.CallError(f"failed to call webhook: {err}") from None
            answer = review.read(inv, uid, status, data)
        except client.CallError as err:
            if hook.fail_open:
                log.warning("Failed calling webhook, failing open %s: %s", hook.name, err)
                audit.annotate(f"failed-open.{annotation}", hook.name)
                return None
            raise review.calling_error(hook.name, str(err)) from None
        for text in answer.warnings:
            if text not in opts.warnings:
                opts.warnings.append(text)
        for key, value in answer.audit_annotations.items():
            audit.annotate(f"{hook.name}/{key}", value)
        return answer


def _versioned(obj: Obj | None, inv: hooks.Invocation) -> Obj | None:
    """`obj` (stored version) as the invocation's resource version serves it; a Scale as it is."""
    if obj is None:
        return None
    if obj.get("kind") == "Scale" and obj.get("apiVersion") == "autoscaling/v1":
        return copy.copy(obj)
    gv = inv.rt.gv
    return conversion.convert(obj, gv) if obj.get("apiVersion") != gv else copy.copy(obj)
