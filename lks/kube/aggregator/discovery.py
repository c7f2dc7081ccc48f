"""Discovery with the aggregated group-versions merged in, as kube-aggregator serves it: the
legacy `/apis` lists every APIService's group (an unavailable one too: its
`/apis/<group>/<version>` then answers 503, the "unable to retrieve the complete list of server
APIs" clients know); `/apis/<group>` is answered here for a group only APIServices serve; the
aggregated `apidiscovery.k8s.io/v2` list carries the group-versions whose resources are known
(a local API's, or what the extension server answered the availability check).

Groups are ordered as upstream orders APIServices: by their highest `groupPriorityMinimum`
(built-in groups first, above every extension), then by name; versions by `versionPriority`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson

from lks.kube.http import discovery as builtin
from lks.kube.http import negotiation

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

Doc = dict[str, Any]


def served(cluster: Cluster):
    """`served(group, version)`: whether the cluster's catalog serves it itself."""
    return lambda g, v: bool(cluster.catalog.resources(g, v))


def _groups(cluster: Cluster) -> list[tuple[str, list[tuple[str, Doc | None, Any]]]]:
    """The aggregated groups in discovery order: (group, [(version, APIService, local API)])."""
    by_group: dict[str, list[tuple[int, int, str, Doc | None, Any]]] = {}
    for g, v, svc, local in cluster.aggregator.aggregated(served(cluster)):
        spec = (svc or {}).get("spec") or {}
        by_group.setdefault(g, []).append((spec.get("groupPriorityMinimum") or 100,
                                           spec.get("versionPriority") or 100, v, svc, local))
    ordered = sorted(by_group.items(), key=lambda kv: (-max(e[0] for e in kv[1]), kv[0]))
    return [(g, [(v, svc, local) for _, _, v, svc, local in sorted(es, key=lambda e: (-e[1], e[2]))])
            for g, es in ordered]


def resources(cluster: Cluster, group: str, version: str) -> list[Doc] | None:
    """The APIResourceList entries of an aggregated group-version, when known."""
    local = cluster.aggregator.local.get((group, version))
    if local is not None:
        return local.resources()
    return cluster.aggregator.remote.get((group, version))


def resource_list(cluster: Cluster, group: str, version: str) -> Doc:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}",
            "resources": resources(cluster, group, version) or []}


def _group_doc(group: str, versions: list[str]) -> Doc:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def has_any(cluster: Cluster) -> bool:
    return cluster.aggregator.active


def _merged(cluster: Cluster, catalog_entries: list[Doc], name: Any,
            extra: list[tuple[str, Doc]]) -> list[Doc]:
    """The catalog's entries (built-in groups first, in their order) merged with the extension
    groups' (`extra`: (group, entry)) by priority: custom groups (CRDs) weigh 1000, as their
    APIServices do."""
    base = {g for g, _ in cluster.base_catalog.groups()}
    fixed = [e for e in catalog_entries if name(e) in base or name(e) == ""]
    rest = [(1000, name(e), e) for e in catalog_entries if name(e) not in base and name(e) != ""]
    prio = _priorities(cluster)
    rest += [(prio.get(g, 100), g, e) for g, e in extra]
    return fixed + [e for _, _, e in sorted(rest, key=lambda t: (-t[0], t[1]))]


def _priorities(cluster: Cluster) -> dict[str, int]:
    out: dict[str, int] = {}
    for g, _v, svc, _ in cluster.aggregator.aggregated(served(cluster)):
        p = ((svc or {}).get("spec") or {}).get("groupPriorityMinimum") or 100
        out[g] = max(out.get(g, 0), p)
    return out


def group_list(cluster: Cluster, docs: builtin.Documents) -> Doc:
    """The legacy `/apis` (built once per catalog and aggregation state)."""
    key = (docs, cluster.aggregator.generation)  # the documents themselves: an id could be reused
    memo = cluster.aggregator.memo
    if memo.get("legacy key") != key:
        extra = [(g, _group_doc(g, [v for v, _, _ in vs])) for g, vs in _groups(cluster) if g not in docs.group]
        groups = _merged(cluster, docs.group_list["groups"], lambda e: e["name"], extra)
        memo["legacy key"], memo["legacy"] = key, {**docs.group_list, "groups": groups}
    return memo["legacy"]


def group(cluster: Cluster, name: str) -> Doc | None:
    for g, vs in _groups(cluster):
        if g == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(g, [v for v, _, _ in vs])}
    return None


def aggregated_groups(cluster: Cluster, docs: builtin.Documents) -> tuple[bytes, str]:
    """The aggregated `/apis` document with the extensions' group-versions, and its ETag
    (cached per catalog and aggregation state)."""
    key = (docs, cluster.aggregator.generation)
    memo = cluster.aggregator.memo
    if memo.get("key") != key:
        doc = orjson.loads(docs.aggregated_groups)
        extra: list[tuple[str, Doc]] = []
        for g, vs in _groups(cluster):
            vdocs = []
            for v, _, _ in vs:
                entries = resources(cluster, g, v)
                if entries is None:
                    continue
                vdocs.append({"version": v, "resources": [_aggregated_resource(g, v, e, entries) for e in entries
                                                           if "/" not in e.get("name", "")],
                              "freshness": "Current"})
            if vdocs:
                extra.append((g, {"metadata": {"name": g, "creationTimestamp": None}, "versions": vdocs}))
        doc["items"] = _merged(cluster, doc["items"], lambda e: e["metadata"].get("name", ""), extra)
        body = negotiation.encode(doc, "json", pretty=False)[0]
        memo["key"], memo["body"] = key, body
        memo["etag"] = '"' + hashlib.sha256(body).hexdigest()[:32].upper() + '"'
    return memo["body"], memo["etag"]


def _aggregated_resource(group: str, version: str, entry: Doc, entries: list[Doc]) -> Doc:
    name = entry.get("name", "")
    r: Doc = {"resource": name,
              "responseKind": {"group": entry.get("group", group), "version": entry.get("version", version),
                               "kind": entry.get("kind", "")},
              "scope": "Namespaced" if entry.get("namespaced") else "Cluster",
              "singularResource": entry.get("singularName") or "",
              "verbs": list(entry.get("verbs") or [])}
    for key, out in (("shortNames", "shortNames"), ("categories", "categories")):
        if entry.get(key):
            r[out] = list(entry[key])
    subs = [{"subresource": e["name"].split("/", 1)[1],
             "responseKind": {"group": e.get("group", group), "version": e.get("version", version),
                              "kind": e.get("kind", "")},
             "verbs": list(e.get("verbs") or [])}
            for e in entries if e.get("name", "").startswith(name + "/")]
    if subs:
        r["subresources"] = subs
    return r
