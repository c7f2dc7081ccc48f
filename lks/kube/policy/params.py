"""The params of a policy binding (upstream's `generic.CollectParams`): the object named by the
binding's `paramRef` (or every object its selector picks) of the policy's `paramKind`, read from
that resource's watch cache, with a store read when a just-created param is not cached yet.
Namespaced params come from `paramRef.namespace`, else the request's namespace.

No param with `parameterNotFoundAction: Deny` is a configuration error, in upstream's words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import selectors

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Obj = dict[str, Any]
_NO_PARAMS: list[Obj | None] = [None]  # shared, never changed


class ConfigError(Exception):
    """The binding cannot be evaluated (failurePolicy decides what the request gets)."""


async def collect(cluster: Cluster, param_kind: tuple[str, str] | None, param_ref: Obj | None,
                  namespace: str) -> list[Obj | None]:
    if param_kind is None or param_ref is None:
        return _NO_PARAMS  # no paramKind: paramRef ignored; no paramRef: evaluated without params
    api_version, kind = param_kind
    group, _, version = api_version.rpartition("/")
    rt = cluster.catalog.by_kind(group, version, kind)
    if rt is None:
        raise ConfigError(f"paramKind kind `&ParamKind{{APIVersion:{api_version},Kind:{kind},}}` not known")
    reg = cluster.registry(rt.group, rt.version, rt.resource)
    ref_ns = param_ref.get("namespace") or ""
    if rt.namespaced:
        namespace = ref_ns or namespace
        if not namespace:
            raise ConfigError("cannot use namespaced paramRef in policy binding that matches cluster-scoped resources")
    elif ref_ns:
        raise ConfigError("paramRef.namespace must not be provided for a cluster-scoped `paramKind`")
    else:
        namespace = ""
    cache = await reg.cache()
    name = param_ref.get("name") or ""
    params: list[Obj | None]
    if name:
        if param_ref.get("selector") is not None:
            raise ConfigError("paramRef.name and paramRef.selector are mutually exclusive")
        key = reg.key(namespace or None, name)
        obj = cache.objects.get(key)
        if obj is None:  # created a moment ago: the feed may not have brought it yet
            kv = await cluster.store.get(key)
            obj = reg.decode(kv) if kv is not None else None
        params = [obj] if obj is not None else []
    elif param_ref.get("selector") is not None:
        selector = selectors.from_label_selector_object(param_ref["selector"])
        prefix = reg.key(namespace, "") if rt.namespaced else reg.prefix
        params = [o for k, o in cache.objects.items()
                  if k.startswith(prefix) and selector.matches(o["metadata"].get("labels"))]
    else:
        raise ConfigError("one of name or selector must be provided")
    if not params and param_ref.get("parameterNotFoundAction") == "Deny":
        raise ConfigError("no params found for policy binding with `Deny` parameterNotFoundAction")
    return params
