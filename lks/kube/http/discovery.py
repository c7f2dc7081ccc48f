"""Discovery documents, legacy (`APIVersions`, `APIGroupList`, `APIGroup`, `APIResourceList`)
and aggregated (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`), built from the catalog once
per Kubernetes version and shared by every cluster of that version.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lks.kube import catalog
from lks.kube.http import negotiation

Doc = dict[str, Any]


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _group_doc(group: str, versions: list[str]) -> Doc:
    gvs = [{"groupVersion": _gv(group, v), "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def _resource_entries(cat: catalog.Catalog, group: str, version: str) -> list[Doc]:
    out: list[Doc] = []
    for rt in cat.resources(group, version):
        entry: Doc = {
            "name": rt.resource, "singularName": rt.singular, "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        if not rt.virtual:
            entry["storageVersionHash"] = _hash(f"{rt.group}/{rt.storage_version}/{rt.kind}")
        out.append(entry)
        for sub in rt.subresources.values():
            s: Doc = {"name": f"{rt.resource}/{sub.name}", "singularName": "", "namespaced": rt.namespaced}
            if (sub.group, sub.version) != (rt.group, rt.version):
                s["group"], s["version"] = sub.group, sub.version
            s["kind"] = sub.kind
            s["verbs"] = list(sub.verbs)
            out.append(s)
    return out


def _hash(text: str) -> str:
    import base64

    return base64.b64encode(hashlib.sha256(text.encode()).digest()[:8]).decode()


class Documents:
    """Every discovery document of one catalog, pre-encoded."""

    def __init__(self, cat: catalog.Catalog):
        self.catalog = cat
        groups = cat.groups()
        self.core_versions = [v for g, vs in groups if g == "" for v in vs]
        self.groups = [(g, vs) for g, vs in groups if g != ""]
        self.api_versions: Doc = {"kind": "APIVersions", "versions": self.core_versions}
        self.group_list: Doc = {
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_doc(g, vs) for g, vs in self.groups],
        }
        self.group: dict[str, Doc] = {
            g: {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(g, vs)} for g, vs in self.groups
        }
        self.resource_lists: dict[tuple[str, str], Doc] = {}
        for g, vs in groups:
            for v in vs:
                self.resource_lists[(g, v)] = {
                    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": _gv(g, v),
                    "resources": _resource_entries(cat, g, v),
                }
        # served as they are to every client, so encoded as JSON responses are (with a newline)
        core, groups = self._aggregated([("", self.core_versions)]), self._aggregated(_aggregated_order(cat, self.groups))
        self.aggregated_core = negotiation.encode(core, "json", pretty=False)[0]
        self.aggregated_groups = negotiation.encode(groups, "json", pretty=False)[0]
        self.etag_core = '"' + hashlib.sha256(self.aggregated_core).hexdigest()[:32].upper() + '"'
        self.etag_groups = '"' + hashlib.sha256(self.aggregated_groups).hexdigest()[:32].upper() + '"'

    def _aggregated(self, groups: list[tuple[str, list[str]]]) -> Doc:
        items = []
        for g, versions in groups:
            vdocs = []
            for v in versions:
                resources = []
                for rt in self.catalog.resources(g, v):
                    r: Doc = {
                        "resource": rt.resource,
                        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                        "scope": "Namespaced" if rt.namespaced else "Cluster",
                        "singularResource": rt.singular,
                        "verbs": list(rt.verbs),
                    }
                    if rt.short_names:
                        r["shortNames"] = list(rt.short_names)
                    if rt.categories:
                        r["categories"] = list(rt.categories)
                    if rt.subresources:
                        r["subresources"] = [
                            {"subresource": s.name,
                             "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                             "verbs": list(s.verbs)}
                            for s in rt.subresources.values()
                        ]
                    resources.append(r)
                vdocs.append({"version": v, "resources": resources, "freshness": "Current"})
            meta: Doc = {"creationTimestamp": None}
            if g:
                meta["name"] = g
            items.append({"metadata": meta, "versions": vdocs})
        return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                "metadata": {}, "items": items}


def _aggregated_order(cat: catalog.Catalog, groups: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """The groups as aggregated discovery orders them: by group priority, then by name. The
    built-in groups keep their (priority) order; CRD groups, all of priority 1000 and below
    every built-in one, follow by name (the legacy `/apis` orders those by APIService name)."""
    try:
        builtin = {g for g, _ in catalog.load(cat.kubernetes_version).groups()}
    except ValueError:
        return groups
    return ([(g, vs) for g, vs in groups if g in builtin]
            + sorted(((g, vs) for g, vs in groups if g not in builtin), key=lambda gv: gv[0]))


def documents(cat: catalog.Catalog) -> Documents:
    """The discovery documents of a catalog, built on first use."""
    docs = cat.memo.get("discovery")
    if docs is None:
        docs = cat.memo["discovery"] = Documents(cat)
    return docs  # type: ignore[return-value]
